"""Where speech goes: audio sinks, and the :class:`Speaker` thread that feeds them.

Sinks (``play(audio, label)``, called from the speaker's worker thread; ``play`` returns when the
utterance has been played, or at once for sinks without a clock):

* :class:`WavFileSink` — numbered WAV files ``0001_<label>.wav`` in a folder, and a list of them
  (headless demo, tests). ``realtime=True`` also waits the audio's duration, like a loudspeaker.
* :class:`SounddeviceSink` — a real output device through the optional ``sounddevice`` package,
  resampled to the device's rate.
* :class:`NullSink` — discards audio.

:class:`Speaker` is the kiosk's one voice: ``say(key, text)`` queues a request; a worker thread
gets the audio from the :class:`~kiosk.speech.prompt_cache.PromptCache` and plays it on the sink.
``is_speaking`` tells the microphone loop (half-duplex) when to stop listening. Errors are logged
and never reach the caller.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, List, Optional, Tuple, Union

import numpy as np

from .prompt_cache import PromptCache
from .voices.base import Audio, TTSError

__all__ = [
    "AudioDeviceUnavailable",
    "AudioSink",
    "NullSink",
    "SounddeviceSink",
    "Speaker",
    "SpeechRecord",
    "WavFileSink",
    "WrittenUtterance",
    "resample",
]

log = logging.getLogger(__name__)


class AudioDeviceUnavailable(RuntimeError):
    """The audio output library or device is missing; the message says how to fix it."""


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample int16 mono audio (linear interpolation, light smoothing when downsampling)."""
    samples = np.asarray(samples)
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.int16, copy=False)
    x = samples.astype(np.float64)
    if dst_rate < src_rate:  # crude anti-alias: moving average over the decimation ratio
        k = round(src_rate / float(dst_rate))
        if k > 1:
            x = np.convolve(x, np.ones(k) / k, mode="same")
    n_out = round(len(x) * dst_rate / float(src_rate))
    t = np.arange(n_out) * (src_rate / float(dst_rate))
    y = np.interp(t, np.arange(len(x)), x)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def safe_label(label: str, max_len: int = 40) -> str:
    """A file-name-safe version of ``label`` (ASCII letters, digits, ``-`` and ``_``)."""
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_")[:max_len]
    return s or "utt"


class AudioSink(ABC):
    """Something that plays audio. ``play`` may block until playback ends (the speaker's
    worker thread calls it); ``stop`` cuts the current utterance short and may be called from
    any thread."""

    @abstractmethod
    def play(self, audio: Audio, label: str) -> None:
        """Play one utterance."""

    def stop(self) -> None:  # noqa: B027 - optional hook, a no-op for sinks without playback
        """Interrupt the utterance being played, if any."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""


class NullSink(AudioSink):
    """Discards audio; counts what it was given."""

    def __init__(self) -> None:
        self.count = 0

    def play(self, audio: Audio, label: str) -> None:
        self.count += 1


@dataclass(frozen=True)
class WrittenUtterance:
    """One file a :class:`WavFileSink` wrote."""

    path: str
    label: str
    duration: float
    time: float  # time.time() when written


class WavFileSink(AudioSink):
    """Writes each utterance to ``directory/NNNN_<label>.wav`` (numbered from 0001) and keeps a
    list of what it wrote in :attr:`written`. With ``realtime=True`` ``play`` also takes as long
    as the audio lasts (interruptible by ``stop``), so timing matches a loudspeaker."""

    def __init__(self, directory: str, realtime: bool = False) -> None:
        self.directory = directory
        self.realtime = realtime
        os.makedirs(directory, exist_ok=True)
        self.written: List[WrittenUtterance] = []
        self._n = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def paths(self) -> List[str]:
        with self._lock:
            return [w.path for w in self.written]

    def play(self, audio: Audio, label: str) -> None:
        with self._lock:
            self._n += 1
            path = os.path.join(self.directory, f"{self._n:04d}_{safe_label(label)}.wav")
        audio.save(path)
        with self._lock:
            self.written.append(WrittenUtterance(path, label, audio.duration, time.time()))
        if self.realtime:
            self._stop.clear()
            self._stop.wait(audio.duration)

    def stop(self) -> None:
        self._stop.set()


class SounddeviceSink(AudioSink):
    """A real loudspeaker through ``sounddevice`` (PortAudio). ``device`` is a sounddevice
    device index or name substring (None: the system default); ``rate`` defaults to the device's
    own rate, and audio is resampled to it. Raises :class:`AudioDeviceUnavailable` at
    construction when the library or the device is missing."""

    def __init__(self, device: Union[int, str, None] = None, rate: Optional[int] = None,
                 block_s: float = 0.05) -> None:
        try:
            import sounddevice as sd
        except ImportError as exc:
            raise AudioDeviceUnavailable(
                "sounddevice is not installed: pip install 'dabai-kiosk[audio]' "
                "(and apt-get install libportaudio2)") from exc
        except OSError as exc:  # the package is there but libportaudio is not
            raise AudioDeviceUnavailable(
                f"PortAudio library not found ({exc}): apt-get install libportaudio2") from exc
        self._sd = sd
        try:
            info = sd.query_devices(device, "output")
        except Exception as exc:  # sounddevice raises ValueError / PortAudioError
            raise AudioDeviceUnavailable(
                f"no audio output device {device!r}: {exc} (list them with: python -m sounddevice)") from exc
        self.device = device
        self.device_name = str(info.get("name", device))
        self.rate = int(rate or info.get("default_samplerate") or 48000)
        self.channels = 1
        try:
            sd.check_output_settings(device=device, samplerate=self.rate, channels=1, dtype="int16")
        except Exception:  # noqa: BLE001 - PortAudio raises its own error types
            self.channels = 2  # e.g. HDMI outputs that only take stereo
            try:
                sd.check_output_settings(device=device, samplerate=self.rate, channels=2, dtype="int16")
            except Exception as exc:
                raise AudioDeviceUnavailable(
                    f"audio device {self.device_name!r} does not accept 16-bit audio at "
                    f"{self.rate} Hz: {exc}") from exc
        self.block = max(256, int(self.rate * block_s))
        self._stop = threading.Event()
        self._stream: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        if self._stream is None:
            self._stream = self._sd.OutputStream(samplerate=self.rate, device=self.device,
                                                 channels=self.channels, dtype="int16")
            self._stream.start()
        return self._stream

    def play(self, audio: Audio, label: str) -> None:
        data = resample(audio.samples, audio.rate, self.rate)
        if self.channels == 2:
            data = np.repeat(data[:, None], 2, axis=1)
        else:
            data = data[:, None]
        self._stop.clear()
        with self._lock:
            try:
                stream = self._open()
                for start in range(0, len(data), self.block):
                    if self._stop.is_set():
                        break
                    stream.write(np.ascontiguousarray(data[start:start + self.block]))
                # Let the device drain what is buffered so "done" means heard.
                if not self._stop.is_set():
                    latency = float(getattr(stream, "latency", 0.0) or 0.0)
                    self._stop.wait(latency)
            except Exception:
                self._close_stream()
                raise

    def stop(self) -> None:
        self._stop.set()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken stream is best effort
                log.debug("closing audio stream: %s", exc)

    def close(self) -> None:
        self.stop()
        with self._lock:
            self._close_stream()


# --------------------------------------------------------------------------------------- speaker


@dataclass
class SpeechRecord:
    """What happened to one ``say`` request (times from ``time.monotonic()``)."""

    key: str
    text: str
    queued: float
    started: Optional[float] = None  # audio handed to the sink (time to first audio = started - queued)
    finished: Optional[float] = None
    duration: float = 0.0
    error: Optional[str] = None
    cancelled: bool = False

    @property
    def latency(self) -> Optional[float]:
        """Seconds from ``say`` to the audio reaching the sink."""
        return None if self.started is None else self.started - self.queued


_STOP = object()


class Speaker:
    """The kiosk's voice: a queue and one worker thread (started on construction).

    ``say(key, text)`` returns at once; requests are spoken in order. ``interrupt=True`` drops
    pending requests and cuts the current one short (a new decision supersedes the old prompt).
    ``is_speaking`` is True from ``say`` until the sink has played the last queued utterance.
    """

    def __init__(self, cache: PromptCache, sink: AudioSink, max_pending: int = 16,
                 history: int = 100, name: str = "speaker") -> None:
        self.cache = cache
        self.sink = sink
        self._q: "queue.Queue[Any]" = queue.Queue(maxsize=max(1, max_pending))
        self._outstanding = 0
        self._cond = threading.Condition()
        self._stopped = False
        self.history: Deque[SpeechRecord] = deque(maxlen=history)
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- caller side -------------------------------------------------------------------------

    @property
    def is_speaking(self) -> bool:
        with self._cond:
            return self._outstanding > 0

    def say(self, key: str, text: str, interrupt: bool = False) -> bool:
        """Queue ``text`` (``key`` names it in logs and file names). False if it was dropped
        because the speaker is stopped or the queue is full."""
        if interrupt:
            self.cancel()
        rec = SpeechRecord(key=key, text=text, queued=time.monotonic())
        with self._cond:
            if self._stopped:
                log.warning("speaker stopped; not saying %s", key)
                return False
            self._outstanding += 1
        try:
            self._q.put_nowait(rec)
        except queue.Full:
            log.warning("speech queue full; dropping %s (%r)", key, text)
            self._done(rec, error="queue full")
            return False
        return True

    def cancel(self) -> None:
        """Drop every pending request and interrupt the one being played."""
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._q.put_nowait(_STOP)
                break
            item.cancelled = True
            self._done(item)
        try:
            self.sink.stop()
        except Exception:
            log.exception("audio sink stop failed")

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block until nothing is queued or playing; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._outstanding > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current utterance (pending ones are dropped) and join the worker."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
        self.cancel()
        try:
            self._q.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("speech queue still full at stop")
        self._thread.join(timeout)

    def records(self) -> List[SpeechRecord]:
        with self._cond:
            return list(self.history)

    def latencies(self) -> List[Tuple[str, float]]:
        """``(key, seconds from say to first audio)`` for the utterances played so far."""
        return [(r.key, r.latency) for r in self.records() if r.latency is not None]

    # -- worker side -------------------------------------------------------------------------

    def _done(self, rec: SpeechRecord, error: Optional[str] = None) -> None:
        if error is not None:
            rec.error = error
        rec.finished = time.monotonic()
        with self._cond:
            self._outstanding = max(0, self._outstanding - 1)
            self.history.append(rec)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            rec: SpeechRecord = item
            error = None
            try:
                audio = self.cache.get(rec.text)
                rec.duration = audio.duration
                rec.started = time.monotonic()
                if len(audio.samples):
                    self.sink.play(audio, rec.key)
            except TTSError as exc:
                error = str(exc)
                self.errors += 1
                log.error("cannot say %s (%r): %s", rec.key, rec.text, exc)
            except Exception as exc:  # a broken device must never take the kiosk down
                error = f"{type(exc).__name__}: {exc}"
                self.errors += 1
                log.exception("playing %s failed", rec.key)
            self._done(rec, error)
