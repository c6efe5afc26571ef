"""Reading WAV files of any common kind into float samples (stdlib + numpy only).

Accepted: PCM 8 (unsigned), 16, 24 and 32-bit, IEEE float 32/64-bit, WAVE_FORMAT_EXTENSIBLE
with either, any rate and channel count. Streaming writers (``espeak-ng --stdout``,
``arecord`` to a pipe) put a placeholder size in the header; that is tolerated. Anything else
that is wrong raises :class:`AudioFileError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import struct
from typing import Tuple

import numpy as np

__all__ = ["AudioFileError", "read_wav", "write_wav"]

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_PLACEHOLDER = 0x7FFF0000  # sizes at or above this are "unknown" (streaming writers)


class AudioFileError(ValueError):
    """An audio file that cannot be used; the message names the file and the reason."""


def _parse(data: bytes, name: str) -> Tuple[np.ndarray, int]:
    if len(data) == 0:
        raise AudioFileError("{}: empty file (0 bytes)".format(name))
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFileError("{}: not a WAV file (no RIFF/WAVE header)".format(name))
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioFileError("{}: truncated or corrupt format chunk".format(name))
            fmt = struct.unpack("<HHIIHH", data[body:body + 16])
            if fmt[0] == _EXTENSIBLE:
                if size < 40 or body + 40 > len(data):
                    raise AudioFileError("{}: corrupt WAVE_FORMAT_EXTENSIBLE chunk".format(name))
                sub = struct.unpack("<H", data[body + 24:body + 26])[0]
                fmt = (sub,) + fmt[1:]
        elif cid == b"data":
            if fmt is None:
                raise AudioFileError("{}: corrupt WAV (data chunk before the format chunk)".format(name))
            avail = len(data) - body
            if size >= _PLACEHOLDER or size == 0 and avail > 0:
                size = avail  # streamed file: the header does not know the length
            elif size > avail:
                raise AudioFileError(
                    "{}: truncated WAV: the header announces {} bytes of audio, the file holds {}".format(name, size, avail))
            return _decode(data[body:body + size], fmt, name)
        if size >= _PLACEHOLDER:
            break
        pos = body + size + (size & 1)
    if fmt is None:
        raise AudioFileError("{}: corrupt WAV (no format chunk)".format(name))
    raise AudioFileError("{}: corrupt WAV (no data chunk)".format(name))


def _decode(raw: bytes, fmt: Tuple[int, ...], name: str) -> Tuple[np.ndarray, int]:
    tag, channels, rate, _, _, bits = fmt
    if channels <= 0 or channels > 64:
        raise AudioFileError("{}: bad channel count {}".format(name, channels))
    if rate < 1000 or rate > 768000:
        raise AudioFileError("{}: unusable sample rate {} Hz".format(name, rate))
    width = bits // 8
    if bits % 8 or width == 0:
        raise AudioFileError("{}: unsupported sample size {} bits".format(name, bits))
    frame = width * channels
    raw = raw[: len(raw) - len(raw) % frame]
    if not raw:
        raise AudioFileError("{}: the WAV file holds no audio samples".format(name))
    if tag == _FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    elif tag == _PCM and bits == 8:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == _PCM and bits == 16:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif tag == _PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    elif tag == _PCM and bits == 32:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise AudioFileError("{}: unsupported WAV encoding (format tag {}, {} bits); "
                             "use PCM 8/16/24/32-bit or float".format(name, tag, bits))
    return x.reshape(-1, channels), int(rate)


def read_wav(path: str) -> Tuple[np.ndarray, int]:
    """``(samples, rate)``: float32 in -1..1, shape ``(frames, channels)``. Raises
    :class:`AudioFileError` for an unreadable, empty, truncated or corrupt file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise AudioFileError("{}: cannot read: {}".format(path, exc.strerror or exc)) from None
    return _parse(data, str(path))


def write_wav(path: str, samples: np.ndarray, rate: int, bits: int = 16) -> None:
    """Write float samples (``(frames,)`` or ``(frames, channels)``, -1..1) as PCM 16/24/32-bit
    or float32 (``bits=-32``). For tests and recordings."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    ch = x.shape[1]
    if bits == -32:
        raw, tag, nbits = x.astype("<f4").tobytes(), _FLOAT, 32
    else:
        scale = float(1 << (bits - 1))
        q = np.clip(np.round(x * scale), -scale, scale - 1).astype(np.int64)
        if bits == 8:
            raw = (q + 128).astype(np.uint8).tobytes()
        elif bits == 16:
            raw = q.astype("<i2").tobytes()
        elif bits == 24:
            u = (q & 0xFFFFFF).astype("<u4").reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :3]
            raw = u.tobytes()
        elif bits == 32:
            raw = q.astype("<i4").tobytes()
        else:
            raise ValueError("bits must be 8, 16, 24, 32 or -32 (float)")
        tag, nbits = _PCM, bits
    width = nbits // 8
    fmt = struct.pack("<HHIIHH", tag, ch, int(rate), int(rate) * ch * width, ch * width, nbits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", len(body)) + body)
