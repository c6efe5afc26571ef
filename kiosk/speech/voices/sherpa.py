"""sherpa-onnx offline TTS voices (VITS or Matcha models a user installs), through ``sherpa_onnx.OfflineTts``.

A model is a folder as the sherpa-onnx releases unpack it (for example ``vits-zh-hf-fanchen-C`` or
``matcha-icefall-zh-baker``): one acoustic ``.onnx`` file, ``tokens.txt``, usually ``lexicon.txt``,
a jieba ``dict/`` folder and text-normalization rules ``phone.fst``/``date.fst``/``number.fst``;
``espeak-ng-data/`` for the espeak-based models. A Matcha model also needs a vocoder ``.onnx``
(e.g. ``vocos-22khz-univ.onnx``, downloaded separately): given as ``vocoder``, or found in the folder.
``pip install 'dabai-kiosk[sherpa]'`` installs the library; it is imported only when a voice is made.

The API used (sherpa-onnx >= 1.10, checked against 2.0.1): ``OfflineTtsVitsModelConfig(model,
lexicon, tokens, data_dir, dict_dir, noise_scale, noise_scale_w, length_scale)``,
``OfflineTtsMatchaModelConfig(acoustic_model, vocoder, lexicon, tokens, data_dir, dict_dir,
noise_scale, length_scale)``, ``OfflineTtsModelConfig(vits=…, matcha=…, num_threads, debug,
provider)``, ``OfflineTtsConfig(model, rule_fsts, max_num_sentences)``, ``config.validate()``,
``OfflineTts(config).generate(text, sid, speed)`` → ``.samples`` (float) and ``.sample_rate``.

Numbers are spoken the kiosk's way first (:func:`kiosk.speech.pinyin.numbers_to_hanzi`: 3-201 →
三杠二零一), so the model's own number rules never see digits.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Optional

import numpy as np

from ..pinyin import numbers_to_hanzi
from .base import Audio, SynthesisError, Voice, VoiceUnavailable

__all__ = ["SherpaVoice", "find_sherpa_model"]

INSTALL_HINT = "pip install 'dabai-kiosk[sherpa]' (sherpa-onnx)"
MODEL_HINT = ("unpack a sherpa-onnx TTS model (VITS or Matcha, e.g. vits-zh-hf-fanchen-C from the "
              "k2-fsa/sherpa-onnx tts-models release) into $DABAI_HOME/models/tts/ or set speech.model")
_RULE_FSTS = ("phone.fst", "date.fst", "number.fst")
#: metadata sherpa-onnx's TTS loaders read with SHERPA_ONNX_READ_META_DATA: a model without one of them
#: makes it print "'…' does not exist in the metadata" and exit() the whole kiosk (checked on 2.0.1).
_REQUIRED_META = {"vits": ("sample_rate", "n_speakers", "language", "comment"),
                  "matcha": ("sample_rate", "n_speakers", "use_eos_bos", "pad_id")}
#: vocoder ``model_type``s sherpa-onnx knows; with another (or none) it segfaults.
_VOCODER_TYPES = ("hifigan", "vocos", "matcha-tts vocos")
_VOCODER_DEFAULT_RATE = 22050  # what sherpa-onnx assumes for a vocoder that declares no sample_rate
_VOCODER_PATTERNS = ("vocos*.onnx", "hifigan*.onnx", "*vocoder*.onnx")


def _is_vocoder(path: str) -> bool:
    name = os.path.basename(path).lower()
    return name.startswith(("vocos", "hifigan")) or "vocoder" in name


def find_sherpa_model(root: str) -> Optional[str]:
    """``root`` itself when it is a sherpa-onnx TTS folder (has ``tokens.txt`` and an .onnx), else
    the first such folder directly under it (sorted), else None."""
    def ok(d: str) -> bool:
        return os.path.isfile(os.path.join(d, "tokens.txt")) and bool(glob.glob(os.path.join(d, "*.onnx")))

    if not os.path.isdir(root):
        return None
    if ok(root):
        return root
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if os.path.isdir(d) and ok(d):
            return d
    return None


def _check_loadable(kind: str, acoustic: str, vocoder: str, lexicon: str, data_dir: str) -> None:
    """Raise :class:`VoiceUnavailable` for files sherpa-onnx would exit() or crash the process on:
    required metadata missing; (VITS) no way to turn text into tokens (no lexicon, no espeak-ng data and
    not a ``characters`` model); (Matcha) a vocoder of unknown type or of another sample rate."""
    from ..recognizers.base import metadata_gaps

    meta, missing = metadata_gaps(acoustic, _REQUIRED_META[kind])
    if missing:
        raise VoiceUnavailable("{} is not a sherpa-onnx {} voice: its metadata lacks {}".format(
            acoustic, "VITS" if kind == "vits" else "Matcha", ", ".join(missing)))
    if not meta:  # not parseable here: sherpa-onnx's own (catchable) error says why
        return
    if kind == "vits" and not lexicon and not data_dir and meta.get("frontend") != "characters":
        raise VoiceUnavailable("the sherpa-onnx VITS voice {} needs lexicon.txt or espeak-ng-data/ beside it".format(
            os.path.dirname(acoustic)))
    voc, untyped = metadata_gaps(vocoder, ("model_type",)) if kind == "matcha" else ({}, [])
    if not voc and not untyped:  # no vocoder, or not parseable here
        return
    if voc.get("model_type") not in _VOCODER_TYPES:
        raise VoiceUnavailable("{} is not a sherpa-onnx vocoder: its metadata has {} (known: {})".format(
            vocoder, "model_type {!r}".format(voc["model_type"]) if voc.get("model_type") else "no model_type",
            ", ".join(_VOCODER_TYPES)))
    rate = voc.get("sample_rate", str(_VOCODER_DEFAULT_RATE))
    if rate != meta["sample_rate"]:
        raise VoiceUnavailable("the vocoder {} is for {} Hz, the Matcha model {} for {} Hz (for 16 kHz models use "
                               "vocos-16khz-univ.onnx)".format(vocoder, rate, acoustic, meta["sample_rate"]))


class SherpaVoice(Voice):
    """A sherpa-onnx VITS or Matcha voice from a model folder.

    ``kind``: ``vits``, ``matcha`` or ``auto`` (Matcha when a vocoder is given or found, else VITS).
    ``speed``: 1.0 normal, larger = faster (sherpa-onnx's ``speed``). ``speaker_id`` for multi-speaker
    models. ``model_file`` picks the acoustic ``.onnx`` when the folder has several.
    """

    def __init__(
        self,
        model_dir: str,
        kind: str = "auto",
        vocoder: str = "",
        model_file: str = "",
        speaker_id: int = 0,
        speed: float = 1.0,
        threads: int = 1,
        provider: str = "cpu",
        noise_scale: Optional[float] = None,
        length_scale: float = 1.0,
    ) -> None:
        if kind not in ("auto", "vits", "matcha"):
            raise ValueError("sherpa-onnx voice kind must be auto, vits or matcha, got {!r}".format(kind))
        if not 0.3 <= float(speed) <= 3.0:
            raise ValueError("sherpa-onnx speed must be 0.3..3.0, got {!r}".format(speed))
        found = find_sherpa_model(model_dir) if model_dir else None
        if found is None:
            raise VoiceUnavailable("no sherpa-onnx TTS model (tokens.txt + .onnx) in {!r}: {}".format(model_dir, MODEL_HINT))
        self.model_dir = found
        onnx_files = sorted(glob.glob(os.path.join(found, "*.onnx")))
        if not vocoder:
            for pattern in _VOCODER_PATTERNS:
                hits = sorted(glob.glob(os.path.join(found, pattern)))
                if hits:
                    vocoder = hits[0]
                    break
        if kind == "auto":
            kind = "matcha" if vocoder else "vits"
        if kind == "matcha" and not (vocoder and os.path.isfile(vocoder)):
            raise VoiceUnavailable("sherpa-onnx Matcha model in {} needs a vocoder .onnx (e.g. vocos-22khz-univ.onnx "
                                   "from the k2-fsa/sherpa-onnx vocoder-models release): set speech.vocoder".format(found))
        acoustic = [f for f in onnx_files if not _is_vocoder(f)]
        if model_file:
            acoustic = [model_file if os.path.isabs(model_file) else os.path.join(found, model_file)]
        if not acoustic or not os.path.isfile(acoustic[0]):
            raise VoiceUnavailable("no acoustic .onnx model in {}: {}".format(found, MODEL_HINT))
        if len(acoustic) > 1:  # e.g. model.onnx and model.int8.onnx: prefer the plain one
            plain = [f for f in acoustic if ".int8." not in os.path.basename(f)]
            acoustic = plain or acoustic
        try:
            import sherpa_onnx  # type: ignore[import-not-found]
        except Exception as exc:
            raise VoiceUnavailable("sherpa-onnx is not installed ({}): {}".format(exc, INSTALL_HINT)) from exc

        def opt(name: str) -> str:
            p = os.path.join(found, name)
            return p if os.path.exists(p) else ""

        lexicon, tokens = opt("lexicon.txt"), os.path.join(found, "tokens.txt")
        data_dir, dict_dir = opt("espeak-ng-data"), opt("dict")
        _check_loadable(kind, acoustic[0], vocoder if kind == "matcha" else "", lexicon, data_dir)
        rule_fsts = ",".join(p for p in (opt(n) for n in _RULE_FSTS) if p)
        self.kind = kind
        self.acoustic = acoustic[0]
        self.vocoder = vocoder if kind == "matcha" else ""
        self.speaker_id = int(speaker_id)
        self.speed = float(speed)
        try:
            if kind == "vits":
                vits = sherpa_onnx.OfflineTtsVitsModelConfig(
                    model=self.acoustic, lexicon=lexicon, tokens=tokens, data_dir=data_dir, dict_dir=dict_dir,
                    noise_scale=0.667 if noise_scale is None else float(noise_scale), length_scale=float(length_scale))
                model = sherpa_onnx.OfflineTtsModelConfig(vits=vits, num_threads=int(threads), provider=provider)
            else:
                matcha = sherpa_onnx.OfflineTtsMatchaModelConfig(
                    acoustic_model=self.acoustic, vocoder=self.vocoder, lexicon=lexicon, tokens=tokens,
                    data_dir=data_dir, dict_dir=dict_dir, noise_scale=1.0 if noise_scale is None else float(noise_scale),
                    length_scale=float(length_scale))
                model = sherpa_onnx.OfflineTtsModelConfig(matcha=matcha, num_threads=int(threads), provider=provider)
            config = sherpa_onnx.OfflineTtsConfig(model=model, rule_fsts=rule_fsts, max_num_sentences=1)
            if hasattr(config, "validate") and not config.validate():
                raise VoiceUnavailable("sherpa-onnx rejected the model files in {} (config.validate() failed)".format(found))
            self._tts: Any = sherpa_onnx.OfflineTts(config)
        except VoiceUnavailable:
            raise
        except Exception as exc:
            raise VoiceUnavailable("sherpa-onnx cannot load the TTS model in {}: {}".format(found, exc)) from exc
        self.rate = int(self._tts.sample_rate)
        self.name = "sherpa-onnx:{}:{}".format(kind, os.path.basename(os.path.normpath(found)))
        self._files = "-".join(str(os.path.getsize(f)) for f in [self.acoustic] + ([self.vocoder] if self.vocoder else []))
        self._settings = "noise{} length{:.3f}".format(noise_scale, float(length_scale))

    @property
    def params(self) -> str:
        return "sid{} speed{:.3f} {} files{}".format(self.speaker_id, self.speed, self._settings, self._files)

    def text_for_model(self, text: str) -> str:
        """What the model is given: numbers already spoken as characters."""
        return numbers_to_hanzi(text)

    def synthesize(self, text: str) -> Audio:
        spoken = self.text_for_model(text).strip()
        if not spoken:
            return Audio(np.zeros(0, dtype=np.int16), self.rate)
        try:
            out = self._tts.generate(spoken, sid=self.speaker_id, speed=self.speed)
        except Exception as exc:
            raise SynthesisError("sherpa-onnx failed for {!r}: {}".format(text, exc)) from exc
        samples = np.asarray(out.samples, dtype=np.float32)
        return Audio(np.clip(samples, -1.0, 1.0), int(out.sample_rate))

    def __repr__(self) -> str:
        return "SherpaVoice({!r}, {})".format(self.model_dir, self.params)

