"""The one interface every voice runs behind, and the audio it makes.

* :class:`Audio` — int16 mono samples and their rate; WAV in and out (stdlib only).
* :class:`Voice` — ``name``, ``params`` (everything that changes the sound, used in cache keys)
  and ``synthesize(text) -> Audio``.
* :class:`TTSError` and its two kinds: :class:`VoiceUnavailable` (the backend's program, library or
  model is missing; the message says how to install it) and :class:`SynthesisError` (installed, but
  failed on this text).

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import io
import struct
import wave
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.config import atomic_write

__all__ = [
    "Audio",
    "SynthesisError",
    "TTSError",
    "Voice",
    "VoiceUnavailable",
]


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
