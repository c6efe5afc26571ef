"""The project's own keyword model (``listen.recognizer = "dabai-kws"``): 「你好大白，请让我进入小区」.

A small depthwise-separable CNN over log-mel features of a fixed 4 s window, trained by
``dabai-kiosk train keyword`` (:mod:`kiosk.train.keyword`) on synthesized speech only; it ships
as ``engines/keyword.onnx`` (see ``engines/KEYWORD_MODEL_CARD.md``) and runs with ONNX Runtime
through :func:`kiosk.inference.load_model`.

The features are computed here, in numpy, by the SAME functions at training and run time:

* :func:`log_mel` — 25 ms Hann windows every 10 ms, 512-point FFT, 40 mel bands (HTK mel scale,
  20–7600 Hz), natural log of the power;
* :func:`trim_speech` — the stretch from the first to the last 10 ms frame within
  ``TRIM_DB`` of the loudest one (plus 100 ms either side), so the VAD's pre-roll and hangover
  do not move the phrase in the window;
* :func:`windows` — the trimmed utterance centred in a zero-padded 4 s window; a longer one is
  cut into 4 s windows every 0.5 s (the score is the highest);
* :func:`features` — log-mel of each window minus its own maximum (gain does not matter),
  floored at ``FLOOR`` and scaled, shape ``[windows, 1, N_MELS, FRAMES]``.

The ONNX model takes ``features`` ``[batch, 1, 40, 398]`` float32 and gives ``prob`` ``[batch]``
(the probability that the window holds the request) and ``threshold`` ``[1]`` (calibrated at
training time on the validation set). A detection is returned as
``Recognition(text=PHRASE, keyword=PHRASE, confidence=prob)`` so the intent matcher maps it to
``enter``; otherwise ``text`` is ``""``. Python 3.8 compatible.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .recognizers.base import Recognition, Recognizer, RecognizerUnavailable

__all__ = [
    "DEFAULT_MODEL",
    "FRAMES",
    "N_MELS",
    "PHRASE",
    "DabaiKeywordSpotter",
    "features",
    "log_mel",
    "mel_filterbank",
    "trim_speech",
    "windows",
]

RATE = 16000
PHRASE = "你好大白，请让我进入小区"
N_MELS = 40
WIN = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
F_MIN = 20.0
F_MAX = 7600.0
WINDOW_S = 4.0
WINDOW = int(WINDOW_S * RATE)
STEP = int(0.5 * RATE)
FRAMES = 1 + (WINDOW - WIN) // HOP  # 398
TRIM_DB = 40.0
TRIM_PAD_S = 0.1
FLOOR = -12.0  # natural-log units below the window's maximum (about 52 dB)
EPS = 1e-10
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "engines" / "keyword.onnx"
TRAIN_HINT = "dabai-kiosk train keyword (or python -m kiosk.train.keyword)"

_FB_CACHE: Dict[int, np.ndarray] = {}


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int = N_MELS) -> np.ndarray:
    """Triangular HTK-mel filters ``[n_mels, N_FFT // 2 + 1]`` (float32, peak 1)."""
    if n_mels in _FB_CACHE:
        return _FB_CACHE[n_mels]
    bins = np.arange(N_FFT // 2 + 1) * RATE / float(N_FFT)
    pts = _mel_to_hz(np.linspace(_hz_to_mel(np.array(F_MIN)), _hz_to_mel(np.array(F_MAX)), n_mels + 2))
    fb = np.zeros((n_mels, bins.size), dtype=np.float64)
    for i in range(n_mels):
        lo, mid, hi = pts[i], pts[i + 1], pts[i + 2]
        up = (bins - lo) / max(mid - lo, 1e-9)
        down = (hi - bins) / max(hi - mid, 1e-9)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
    out = fb.astype(np.float32)
    _FB_CACHE[n_mels] = out
    return out


def _float(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    return np.ascontiguousarray(x, dtype=np.float32).reshape(-1)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """Natural-log mel power ``[frames, N_MELS]`` of 16 kHz audio (frames = 1 + (n - 400) // 160;
    shorter input is zero-padded to one frame)."""
    x = _float(samples)
    if x.size < WIN:
        x = np.concatenate([x, np.zeros(WIN - x.size, dtype=np.float32)])
    n = 1 + (x.size - WIN) // HOP
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
    frames = x[idx] * np.hanning(WIN).astype(np.float32)[None, :]
    spec = np.fft.rfft(frames, n=N_FFT, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return np.log(power @ mel_filterbank().T + EPS).astype(np.float32)


def trim_speech(samples: np.ndarray, top_db: float = TRIM_DB) -> np.ndarray:
    """The loud part of an utterance: first to last 10 ms frame within ``top_db`` of the loudest,
    with ``TRIM_PAD_S`` kept either side. Silence stays as it is."""
    x = _float(samples)
    n = x.size // HOP
    if n < 2:
        return x
    energy = (x[: n * HOP].reshape(n, HOP) ** 2).mean(axis=1)
    peak = float(energy.max())
    if peak <= 1e-12:
        return x
    active = np.nonzero(10.0 * np.log10(energy / peak + 1e-12) > -top_db)[0]
    pad = int(TRIM_PAD_S * RATE)
    a = max(0, int(active[0]) * HOP - pad)
    b = min(x.size, (int(active[-1]) + 1) * HOP + pad)
    return x[a:b]


def windows(samples: np.ndarray, trim: bool = True) -> List[np.ndarray]:
    """4 s windows of an utterance: trimmed and centred when it fits, else every 0.5 s."""
    x = trim_speech(samples) if trim else _float(samples)
    if x.size <= WINDOW:
        out = np.zeros(WINDOW, dtype=np.float32)
        a = (WINDOW - x.size) // 2
        out[a:a + x.size] = x
        return [out]
    starts = list(range(0, x.size - WINDOW + 1, STEP))
    if starts[-1] != x.size - WINDOW:
        starts.append(x.size - WINDOW)
    return [x[s:s + WINDOW] for s in starts]


def window_features(window: np.ndarray) -> np.ndarray:
    """Normalized log-mel ``[N_MELS, FRAMES]`` of one 4 s window."""
    m = log_mel(window).T
    m = np.maximum(m - m.max(), FLOOR)
    return ((m - FLOOR / 2.0) / 4.0).astype(np.float32)


def features(samples: np.ndarray, trim: bool = True) -> np.ndarray:
    """Model input ``[windows, 1, N_MELS, FRAMES]`` for one utterance (16 kHz)."""
    return np.stack([window_features(w) for w in windows(samples, trim)])[:, None, :, :]


class DabaiKeywordSpotter(Recognizer):
    """The ``dabai-kws`` backend: ``engines/keyword.onnx`` (or ``model``) on each utterance.

    ``threshold`` overrides the calibrated one stored in the model. A missing or unreadable
    model file raises :class:`RecognizerUnavailable` naming it.
    """

    def __init__(self, model: Optional[str] = None, threads: int = 1, threshold: Optional[float] = None,
                 backend: str = "onnxruntime") -> None:
        path = Path(model) if model else DEFAULT_MODEL
        if path.is_dir():
            path = path / "keyword.onnx"
        if not path.is_file():
            raise RecognizerUnavailable("keyword model {} not found (the project's dabai-kws model ships in engines/; "
                                        "retrain it with `{}`)".format(path, TRAIN_HINT))
        from kiosk.inference import BackendUnavailable, ModelError, load_model

        kwargs: Dict[str, Any] = {"intra_op_threads": max(1, int(threads))} if backend == "onnxruntime" else {}
        try:
            self.runner = load_model(str(path), backend, **kwargs)
            out = self.runner.run({self.runner.input_names[0]: np.zeros((1, 1, N_MELS, FRAMES), np.float32)})
        except (BackendUnavailable, ModelError) as exc:
            raise RecognizerUnavailable("keyword model {} cannot be used: {} (retrain: `{}`)".format(
                path, exc, TRAIN_HINT)) from exc
        if "prob" not in out:
            raise RecognizerUnavailable("keyword model {} is not a dabai-kws model (no 'prob' output)".format(path))
        stored = float(np.asarray(out["threshold"]).reshape(-1)[0]) if "threshold" in out else 0.5
        self.threshold = float(threshold) if threshold is not None else stored
        self.path = str(path)
        self.input_name = self.runner.input_names[0]
        self.name = "dabai-kws:{}".format(path.name)

    def score(self, samples_16k: np.ndarray) -> float:
        """Highest request probability over the utterance's windows."""
        x = _float(samples_16k)
        if x.size == 0:
            return 0.0
        prob = self.runner.run({self.input_name: features(x)})["prob"]
        return float(np.max(prob))

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        t0 = time.perf_counter()
        p = self.score(samples_16k)
        hit = p >= self.threshold
        ms = (time.perf_counter() - t0) * 1000.0
        return Recognition(text=PHRASE if hit else "", keyword=PHRASE if hit else None, confidence=p, ms=ms,
                           backend=self.name)


def create(spec: Any) -> DabaiKeywordSpotter:
    """Factory for :func:`kiosk.speech.recognizers.register_backend` (``RecognizerSpec``): ``spec.path``
    (a ``.onnx`` file or a folder holding ``keyword.onnx``) or ``$DABAI_KWS_MODEL`` or the shipped model."""
    path = spec.path
    if path is None or (Path(path).is_dir() and not (Path(path) / "keyword.onnx").is_file()):
        path = os.environ.get("DABAI_KWS_MODEL") or None
    return DabaiKeywordSpotter(str(path) if path else None, threads=getattr(spec, "threads", 1))
