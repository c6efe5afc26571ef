"""Voice activity detection and utterance segmentation at 16 kHz.

* :class:`SileroVad` — Silero VAD (MIT) run with ONNX Runtime from the ONNX file shipped in the
  ``silero-vad`` wheel (``pip install --no-deps silero-vad``: the wheel declares torch, the
  kiosk never imports it). Model I/O (v5/v6): ``input`` float32 ``(1, 64 + 512)`` — 64 samples
  of context from the previous window followed by the 512-sample window —, ``state`` float32
  ``(2, 1, 128)``, ``sr`` int64 scalar; outputs the speech probability ``(1, 1)`` and the next
  state. The file is located with :func:`importlib.util.find_spec`, which does not run the
  package's ``__init__`` (that one imports torch).
* :class:`EnergyVad` — a FALLBACK when the model is missing: an adaptive energy threshold, much
  worse in noise; it says so in the log whenever it is built.
* :class:`Segmenter` — speech probabilities per 32 ms chunk → :class:`Utterance` objects with
  pre-roll, a minimum speech length, a hangover of silence that ends an utterance and a
  maximum utterance length.
"""

from __future__ import annotations

import importlib.util
import logging
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Deque, List, Optional

import numpy as np

from .sources import CHUNK, SAMPLE_RATE

__all__ = [
    "EnergyVad",
    "Segmenter",
    "SegmenterSettings",
    "SileroVad",
    "Utterance",
    "Vad",
    "VadModelMissing",
    "create_vad",
    "silero_model_path",
]

log = logging.getLogger(__name__)

SILERO_FILE = "silero_vad.onnx"
_ENGINES = Path(__file__).resolve().parents[2] / "engines"


class VadModelMissing(RuntimeError):
    """The Silero VAD ONNX file cannot be found or loaded; the message names it and the fix."""


def silero_model_path(explicit: str = "") -> Path:
    """Where ``silero_vad.onnx`` is: ``explicit`` if given, else ``engines/silero_vad.onnx``, else
    the copy inside the installed ``silero-vad`` wheel (``silero_vad/data/silero_vad.onnx``)."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise VadModelMissing("VAD model {} not found (listen.vad_model)".format(p))
        return p
    local = _ENGINES / SILERO_FILE
    if local.is_file():
        return local
    spec = importlib.util.find_spec("silero_vad")  # finds the package without importing it (or torch)
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            p = Path(root) / "data" / SILERO_FILE
            if p.is_file():
                return p
    raise VadModelMissing(
        "Silero VAD model {} not found: pip install --no-deps 'silero-vad>=5' (MIT; its ONNX files only, "
        "torch is not needed) or copy the file to {}".format(SILERO_FILE, local))


class Vad(ABC):
    """Speech probability of one 512-sample chunk at 16 kHz, with memory between chunks."""

    name = "vad"
    fallback = False

    @abstractmethod
    def prob(self, chunk: np.ndarray) -> float:
        """Probability (0..1) that ``chunk`` holds speech."""

    def reset(self) -> None:  # noqa: B027 - stateless backends need nothing
        """Forget the past (a new stream, or input dropped while the kiosk spoke)."""


class SileroVad(Vad):
    """Silero VAD through ONNX Runtime (one thread; about 0.1-0.3 ms per 32 ms chunk on a PC CPU)."""

    CONTEXT = 64

    def __init__(self, model_path: str = "", threads: int = 1) -> None:
        path = silero_model_path(model_path)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise VadModelMissing("onnxruntime is not installed: pip install onnxruntime") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # the model carries unused initializers ORT warns about
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged file
            raise VadModelMissing("Silero VAD model {} cannot be loaded: {}".format(path, exc)) from exc
        inputs = {i.name: i for i in self.session.get_inputs()}
        if "input" not in inputs or "state" not in inputs:
            raise VadModelMissing("{}: unsupported Silero VAD version (inputs {}; need input, state[, sr]: "
                                  "silero-vad >= 5)".format(path, sorted(inputs)))
        self.has_sr = "sr" in inputs
        self.path = path
        self.name = "silero-vad:{}".format(path.name)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(self.CONTEXT, dtype=np.float32)

    def prob(self, chunk: np.ndarray) -> float:
        x = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if len(x) != CHUNK:
            raise ValueError("Silero VAD takes {} samples at 16 kHz, got {}".format(CHUNK, len(x)))
        feed = {"input": np.concatenate([self._context, x])[None, :], "state": self._state}
        if self.has_sr:
            feed["sr"] = np.array(SAMPLE_RATE, dtype=np.int64)
        out, self._state = self.session.run(None, feed)
        self._context = x[-self.CONTEXT:]
        return float(np.asarray(out).reshape(-1)[0])


class EnergyVad(Vad):
    """FALLBACK voice activity from loudness over an adaptive noise floor. It cannot tell speech
    from other sounds (traffic, music, a door): use it only when Silero VAD is missing."""

    fallback = True
    name = "energy-vad (fallback)"

    def __init__(self, margin_db: float = 12.0, floor_db: float = -60.0) -> None:
        self.margin_db = margin_db
        self.min_floor = floor_db
        log.warning("VAD: using the FALLBACK energy detector, not Silero VAD (worse in noise)")
        self.reset()

    def reset(self) -> None:
        self.floor = self.min_floor

    def prob(self, chunk: np.ndarray) -> float:
        x = np.asarray(chunk, dtype=np.float64)
        db = 10.0 * np.log10(float(np.mean(x * x)) + 1e-12)
        # the floor follows quiet input quickly and loud input slowly
        rate = 0.2 if db < self.floor else 0.005
        self.floor = max(self.min_floor, self.floor + rate * (db - self.floor))
        return float(1.0 / (1.0 + np.exp(-(db - self.floor - self.margin_db) / 2.0)))


def create_vad(kind: str = "silero", model_path: str = "", fallback: bool = True) -> Vad:
    """``silero`` (falls back to :class:`EnergyVad`, logged, when ``fallback`` and the model is
    missing) or ``energy``. Raises :class:`VadModelMissing` otherwise."""
    if kind == "energy":
        return EnergyVad()
    if kind != "silero":
        raise ValueError("unknown VAD {!r} (known: silero, energy)".format(kind))
    try:
        return SileroVad(model_path)
    except VadModelMissing as exc:
        if not fallback:
            raise
        log.warning("VAD: %s", exc)
        return EnergyVad()


# --------------------------------------------------------------------------------- segmentation


@dataclass(frozen=True)
class SegmenterSettings:
    threshold: float = 0.5  # a chunk at or above starts / continues speech
    neg_threshold: float = 0.35  # below this a chunk counts as silence (hysteresis)
    preroll_ms: int = 300  # audio kept before the first speech chunk
    min_speech_ms: int = 250  # shorter bursts (clicks, a cough) are dropped
    hangover_ms: int = 500  # this much silence ends an utterance
    max_utterance_s: float = 8.0  # an utterance is cut here even if speech goes on
    tail_ms: int = 200  # silence kept after the last speech chunk


@dataclass(frozen=True)
class Utterance:
    """One segment of speech. Times are stream seconds (samples seen / 16000)."""

    samples: np.ndarray  # float32 at 16 kHz: pre-roll + speech + tail
    start_s: float  # first speech chunk
    end_s: float  # end of the last speech chunk
    closed_s: float  # when the segmenter decided it was over (end_s + hangover, or the cut)
    truncated: bool = False  # cut at max_utterance_s

    @property
    def duration(self) -> float:
        return len(self.samples) / float(SAMPLE_RATE)


class Segmenter:
    """Feeds on ``(chunk, probability)`` pairs; :meth:`push` returns an :class:`Utterance` when one ends."""

    def __init__(self, settings: Optional[SegmenterSettings] = None, chunk_samples: int = CHUNK) -> None:
        self.settings = settings or SegmenterSettings()
        self.chunk_samples = chunk_samples
        ms = 1000.0 * chunk_samples / SAMPLE_RATE
        s = self.settings
        self._pre_n = max(0, int(round(s.preroll_ms / ms)))
        self._min_n = max(1, int(round(s.min_speech_ms / ms)))
        self._hang_n = max(1, int(round(s.hangover_ms / ms)))
        self._max_n = max(self._min_n + 1, int(s.max_utterance_s * 1000 / ms))
        self._tail_n = max(0, int(round(s.tail_ms / ms)))
        self.index = 0  # chunks seen
        self._preroll: Deque[np.ndarray] = deque(maxlen=max(1, self._pre_n))
        self._speech: List[np.ndarray] = []
        self._start = -1
        self._pre_used = 0
        self._last = -1
        self.dropped_short = 0

    @property
    def in_speech(self) -> bool:
        return self._start >= 0

    def _t(self, idx: int) -> float:
        return idx * self.chunk_samples / float(SAMPLE_RATE)

    def reset(self) -> None:
        """Drop anything in progress (input is being ignored)."""
        self._preroll.clear()
        self._speech = []
        self._start = -1

    def skip(self, n_chunks: int = 1) -> None:
        """Chunks that were not seen (dropped while the kiosk spoke) still move the clock."""
        self.reset()
        self.index += n_chunks

    def push(self, chunk: np.ndarray, prob: float) -> Optional[Utterance]:
        i = self.index
        self.index += 1
        s = self.settings
        if self._start < 0:
            if prob >= s.threshold:
                pre = list(self._preroll) if self._pre_n else []
                self._speech = pre + [chunk]
                self._pre_used = len(pre)
                self._start = self._last = i
                self._preroll.clear()
            elif self._pre_n:
                self._preroll.append(chunk)
            return None
        self._speech.append(chunk)
        if prob >= s.neg_threshold:
            self._last = i
        if i - self._last >= self._hang_n:
            return self._close(i, truncated=False)
        if i - self._start + 1 >= self._max_n:
            return self._close(i, truncated=True)
        return None

    def pending(self) -> Optional[Utterance]:
        """The utterance in progress as :meth:`push` would close it if no more speech came, offered
        once, at the chunk where its silence tail is complete (``tail_ms`` after the last speech
        chunk, long before the hangover): the same samples and times, ``closed_s`` = now."""
        i = self.index - 1
        if self._start < 0 or i - self._last != self._tail_n or self._last - self._start + 1 < self._min_n:
            return None
        return self._utterance(i, i, truncated=False)

    def flush(self) -> Optional[Utterance]:
        """End of stream: the utterance in progress, if long enough."""
        if self._start < 0:
            return None
        return self._close(self.index - 1, truncated=False)

    def _close(self, i: int, truncated: bool) -> Optional[Utterance]:
        too_short = self._last - self._start + 1 < self._min_n
        utt = None if too_short else self._utterance(min(i, self._last + self._tail_n) if not truncated else i, i, truncated)
        self._speech = []
        self._start = -1
        if truncated:  # speech goes on: the next chunks start a new utterance at once if still speech
            self._preroll.clear()
        if too_short:
            self.dropped_short += 1
        return utt

    def _utterance(self, keep_to: int, i: int, truncated: bool) -> Utterance:
        """The open utterance's samples up to chunk ``keep_to`` (pre-roll, speech, tail), decided at chunk ``i``."""
        n_keep = self._pre_used + (keep_to - self._start + 1)
        return Utterance(np.concatenate(self._speech[:n_keep]).astype(np.float32), self._t(self._start),
                         self._t(self._last + 1), self._t(i + 1), truncated)


def describe_vad(vad: Any) -> str:
    """One line naming the VAD in use (and shouting when it is the fallback)."""
    name = getattr(vad, "name", type(vad).__name__)
    return "{} — FALLBACK, Silero VAD missing".format(name) if getattr(vad, "fallback", False) else name


