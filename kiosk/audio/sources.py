"""Microphone input behind one interface: 16 kHz mono float32 chunks, from a device or a file.

* :class:`SounddeviceSource` — a real input device through ``sounddevice`` (PortAudio), at the
  device's own rate and channel count. PortAudio's callback only copies blocks into a
  :class:`RingBuffer`; the consumer thread does the rest.
* :class:`WavFileSource` — a WAV file standing in for the microphone: it is cut into
  device-like blocks and goes through the same :class:`Chunker` (downmix → anti-aliased
  resampling → fixed chunks) as the device, optionally paced in real time.

Both yield ``chunk_samples`` (512 = 32 ms) float32 samples at 16 kHz from :meth:`AudioSource.chunks`.
A missing library or device raises :class:`AudioInputUnavailable` with how to fix it.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Iterator, List, Optional, Union

import numpy as np

from .resample import StreamResampler
from .wavfile import AudioFileError, read_wav

__all__ = [
    "SAMPLE_RATE",
    "AudioFileError",
    "AudioInputUnavailable",
    "AudioSource",
    "Chunker",
    "RingBuffer",
    "SounddeviceSource",
    "WavFileSource",
    "open_audio_source",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CHUNK = 512  # Silero VAD's window at 16 kHz


class AudioInputUnavailable(RuntimeError):
    """No usable audio input (library, PortAudio or device missing); says how to fix it."""


class RingBuffer:
    """A fixed-size, thread-safe FIFO of audio frames ``(n, channels)`` float32.

    ``write`` never blocks (PortAudio's callback calls it): when full, the oldest frames are
    overwritten and counted in :attr:`dropped`. ``read`` blocks until ``n`` frames are there
    or the timeout passes (then it returns what there is, possibly nothing).
    """

    def __init__(self, capacity: int, channels: int = 1) -> None:
        if capacity <= 0 or channels <= 0:
            raise ValueError("capacity and channels must be positive")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._data = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self._start = 0
        self._size = 0
        self.dropped = 0
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return self._size

    def write(self, frames: np.ndarray) -> None:
        x = np.asarray(frames, dtype=np.float32).reshape(-1, self.channels)
        with self._cond:
            if len(x) >= self.capacity:
                self.dropped += self._size + len(x) - self.capacity
                self._data[:] = x[-self.capacity:]
                self._start, self._size = 0, self.capacity
            else:
                over = self._size + len(x) - self.capacity
                if over > 0:
                    self.dropped += over
                    self._start = (self._start + over) % self.capacity
                    self._size -= over
                end = (self._start + self._size) % self.capacity
                first = min(len(x), self.capacity - end)
                self._data[end:end + first] = x[:first]
                self._data[: len(x) - first] = x[first:]
                self._size += len(x)
            self._cond.notify_all()

    def read(self, n: int, timeout: Optional[float] = None) -> np.ndarray:
        """Up to ``n`` oldest frames (removed from the buffer)."""
        with self._cond:
            if timeout is None or timeout > 0:
                self._cond.wait_for(lambda: self._size >= n, timeout)
            k = min(n, self._size)
            idx = (self._start + np.arange(k)) % self.capacity
            out = self._data[idx].copy()
            self._start = (self._start + k) % self.capacity
            self._size -= k
            return out

    def latest(self, n: int) -> np.ndarray:
        """The newest ``n`` frames (or fewer), left in the buffer."""
        with self._cond:
            k = min(n, self._size)
            idx = (self._start + self._size - k + np.arange(k)) % self.capacity
            return self._data[idx].copy()

    def clear(self) -> None:
        with self._cond:
            self._start = self._size = 0


class Chunker:
    """Device blocks ``(frames, channels)`` at ``src_rate`` → 16 kHz mono chunks of equal size.

    Channels are averaged, the rate converted with :class:`StreamResampler` and the result cut
    into ``chunk_samples``; the same blocks give the same chunks whatever their sizes.
    """

    def __init__(self, src_rate: int, chunk_samples: int = CHUNK, rate: int = SAMPLE_RATE) -> None:
        self.resampler = StreamResampler(src_rate, rate)
        self.chunk_samples = int(chunk_samples)
        self._pending = np.zeros(0, dtype=np.float32)

    def _cut(self, y: np.ndarray, final: bool = False) -> List[np.ndarray]:
        buf = np.concatenate([self._pending, y]) if len(self._pending) else y
        n = len(buf) // self.chunk_samples
        out = [buf[i * self.chunk_samples:(i + 1) * self.chunk_samples].astype(np.float32) for i in range(n)]
        self._pending = buf[n * self.chunk_samples:]
        if final and len(self._pending):
            last = np.zeros(self.chunk_samples, dtype=np.float32)
            last[: len(self._pending)] = self._pending
            out.append(last)
            self._pending = np.zeros(0, dtype=np.float32)
        return out

    def feed(self, block: np.ndarray) -> List[np.ndarray]:
        x = np.asarray(block, dtype=np.float32)
        mono = x.mean(axis=1) if x.ndim == 2 else x.reshape(-1)
        return self._cut(self.resampler.process(mono))

    def flush(self) -> List[np.ndarray]:
        """The rest, the last chunk padded with zeros."""
        return self._cut(self.resampler.flush(), final=True)


class AudioSource(ABC):
    """16 kHz mono audio in fixed chunks. ``chunks()`` runs until :meth:`stop` or the end of a file."""

    rate = SAMPLE_RATE
    name = "audio"
    device_rate = SAMPLE_RATE
    chunk_samples = CHUNK

    def __init__(self) -> None:
        self._stop = threading.Event()

    @abstractmethod
    def chunks(self) -> Iterator[np.ndarray]:
        """Yield float32 chunks of ``chunk_samples`` samples at 16 kHz."""

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()


class WavFileSource(AudioSource):
    """A WAV file played into the kiosk as if it were the microphone (same chunking and
    resampling). ``realtime=True`` paces it like a live device; ``block_frames`` is the size
    of the device-like blocks it is cut into. Raises :class:`AudioFileError` at construction for
    a file that cannot be used."""

    def __init__(self, path: str, realtime: bool = False, block_frames: int = 1024,
                 chunk_samples: int = CHUNK) -> None:
        super().__init__()
        self.path = str(path)
        self.frames, self.device_rate = read_wav(self.path)
        self.channels = self.frames.shape[1]
        self.realtime = realtime
        self.block_frames = max(1, int(block_frames))
        self.chunk_samples = int(chunk_samples)
        self.name = "wav:{}".format(self.path)

    @property
    def duration(self) -> float:
        return len(self.frames) / float(self.device_rate)

    def chunks(self) -> Iterator[np.ndarray]:
        chunker = Chunker(self.device_rate, self.chunk_samples)
        t0 = time.monotonic()
        for start in range(0, len(self.frames), self.block_frames):
            if self._stop.is_set():
                return
            block = self.frames[start:start + self.block_frames]
            if self.realtime:  # the block is available once it has been "recorded"
                due = t0 + (start + len(block)) / float(self.device_rate)
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
            for chunk in chunker.feed(block):
                yield chunk
        for chunk in chunker.flush():
            yield chunk


def _import_sounddevice() -> Any:
    try:
        import sounddevice as sd
    except ImportError as exc:
        raise AudioInputUnavailable(
            "sounddevice is not installed: pip install 'dabai-kiosk[audio]' (and apt-get install libportaudio2)") from exc
    except OSError as exc:  # the package is there, PortAudio is not
        raise AudioInputUnavailable("PortAudio library not found ({}): apt-get install libportaudio2".format(exc)) from exc
    return sd


class SounddeviceSource(AudioSource):
    """A microphone through ``sounddevice``. ``device``: index, name substring or None (the
    default input). ``rate`` defaults to the device's own; audio is resampled to 16 kHz.
    ``sd`` replaces the sounddevice module (tests). Raises :class:`AudioInputUnavailable` when
    the library or device is missing or refuses the settings."""

    def __init__(self, device: Union[int, str, None] = None, rate: Optional[int] = None,
                 channels: Optional[int] = None, block_s: float = 0.032, buffer_s: float = 5.0,
                 chunk_samples: int = CHUNK, sd: Any = None) -> None:
        super().__init__()
        self._sd = sd if sd is not None else _import_sounddevice()
        try:
            info = self._sd.query_devices(device, "input")
        except Exception as exc:  # ValueError / PortAudioError: no such device, no input at all
            raise AudioInputUnavailable(
                "no audio input device {!r}: {} (list them with: python -m sounddevice)".format(device, exc)) from exc
        max_in = int(info.get("max_input_channels", 1) or 0)
        if max_in < 1:
            raise AudioInputUnavailable("audio device {!r} has no input channels".format(info.get("name", device)))
        self.device = device
        self.device_name = str(info.get("name", device))
        self.device_rate = int(rate or info.get("default_samplerate") or 16000)
        self.channels = int(channels or 1)
        self.chunk_samples = int(chunk_samples)
        self.block_frames = max(64, int(round(self.device_rate * block_s)))
        self.ring = RingBuffer(int(self.device_rate * buffer_s), self.channels)
        self.status_errors = 0
        self.name = "sounddevice:{}".format(self.device_name)
        self._stream: Any = None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.status_errors += 1  # input overflow: PortAudio lost samples before we saw them
        self.ring.write(indata)

    def _open(self) -> Any:
        try:
            stream = self._sd.InputStream(samplerate=self.device_rate, device=self.device, channels=self.channels,
                                          dtype="float32", blocksize=self.block_frames, callback=self._callback)
            stream.start()
        except Exception as exc:  # PortAudioError and friends
            raise AudioInputUnavailable("cannot open audio input {!r} at {} Hz: {}".format(
                self.device_name, self.device_rate, exc)) from exc
        return stream

    def chunks(self) -> Iterator[np.ndarray]:
        self._stream = stream = self._open()
        chunker = Chunker(self.device_rate, self.chunk_samples)
        try:
            while not self._stop.is_set():
                block = self.ring.read(self.block_frames, timeout=0.25)
                if len(block) == 0:
                    if not getattr(stream, "active", True):  # the device went away (or a finite fake)
                        break
                    continue
                for chunk in chunker.feed(block):
                    yield chunk
            else:
                return
            for chunk in chunker.flush():
                yield chunk
        finally:
            self._close_stream()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken stream is best effort
                log.debug("closing audio input: %s", exc)


def open_audio_source(spec: str = "auto", realtime_files: bool = True) -> AudioSource:
    """``auto`` (the default input device), a sounddevice index or name, or ``wav:PATH``.
    Raises :class:`AudioInputUnavailable` or :class:`AudioFileError`."""
    spec = (spec or "auto").strip()
    if spec.startswith("wav:"):
        return WavFileSource(spec[4:], realtime=realtime_files)
    if spec == "auto":
        return SounddeviceSource(None)
    return SounddeviceSource(int(spec) if spec.isdigit() else spec)
