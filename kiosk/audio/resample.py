"""Anti-aliased sample-rate conversion to the kiosk's 16 kHz, in one shot or a block at a time.

:class:`StreamResampler` is a polyphase FIR resampler (numpy only) with the same filter as
``scipy.signal.resample_poly``: a Kaiser-windowed sinc (beta 5) of ``2 * 10 * max(up, down) + 1``
taps, cut off at the lower of the two Nyquist frequencies. It keeps its history between blocks,
so a stream cut into blocks of any size gives the same samples as the whole signal at once,
and its group delay is compensated: output sample ``n`` is the signal at time ``n / dst_rate``.
"""

from __future__ import annotations

from math import gcd
from typing import List

import numpy as np

__all__ = ["StreamResampler", "resample_to"]


def _lowpass(up: int, down: int, half_len_factor: int = 10, beta: float = 5.0) -> np.ndarray:
    """The anti-aliasing / anti-imaging filter, scaled by ``up`` (firwin with a Kaiser window)."""
    max_rate = max(up, down)
    cutoff = 1.0 / max_rate  # relative to the upsampled Nyquist frequency
    half_len = half_len_factor * max_rate
    n = np.arange(2 * half_len + 1, dtype=np.float64) - half_len
    h = cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half_len + 1, beta)
    h /= h.sum()  # unity gain at DC, as firwin(scale=True)
    return h * up


class StreamResampler:
    """Resample float mono audio from ``src_rate`` to ``dst_rate`` a block at a time.

    ``process(block)`` returns every output sample that the input so far determines;
    ``flush()`` returns the rest (the input is taken as zero after its end). The total output
    length is ``ceil(n_in * dst_rate / src_rate)``, like ``resample_poly``.
    """

    def __init__(self, src_rate: int, dst_rate: int = 16000) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive, got {} -> {}".format(src_rate, dst_rate))
        g = gcd(int(src_rate), int(dst_rate))
        self.src_rate = int(src_rate)
        self.dst_rate = int(dst_rate)
        self.up = self.dst_rate // g
        self.down = self.src_rate // g
        self.identity = self.up == 1 and self.down == 1
        if not self.identity:
            h = _lowpass(self.up, self.down)
            self.delay = (len(h) - 1) // 2  # in upsampled samples
            taps = -(-len(h) // self.up)  # per phase
            padded = np.zeros(taps * self.up)
            padded[: len(h)] = h
            # phases[p, j] = h[p + up * j]: output at upsampled index m = q * up + p uses x[q - j].
            self.phases = padded.reshape(taps, self.up).T.copy()
            self.taps = taps
        else:
            self.delay = 0
            self.taps = 1
        self._hist = np.zeros(self.taps - 1)  # the last taps-1 input samples before _base
        self._buf: List[np.ndarray] = []
        self._n_in = 0  # input samples seen
        self._n_out = 0  # output samples produced

    def _emit(self, x: np.ndarray, n_stop: int) -> np.ndarray:
        """Outputs ``self._n_out`` .. ``n_stop - 1`` from the input ``x`` (all of it so far, from
        index ``self._n_in - len(x)`` on, preceded by the history)."""
        if n_stop <= self._n_out:
            return np.zeros(0, dtype=np.float32)
        n = np.arange(self._n_out, n_stop, dtype=np.int64)
        m = n * self.down + self.delay
        q, p = np.divmod(m, self.up)
        base = self._n_in - len(x)  # absolute index of x[0]
        full = np.concatenate([self._hist, x])  # full[k] = input[base - (taps-1) + k]
        idx = (q - base + self.taps - 1)[:, None] - np.arange(self.taps)[None, :]
        y = np.einsum("ij,ij->i", self.phases[p], full[idx])
        self._n_out = n_stop
        return y.astype(np.float32)

    def _keep_history(self, x: np.ndarray) -> None:
        full = np.concatenate([self._hist, x])
        self._hist = full[len(full) - (self.taps - 1):] if self.taps > 1 else np.zeros(0)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed one block (1-D float); returns the output samples now determined (float32)."""
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        if self.identity:
            self._n_in += len(x)
            self._n_out += len(x)
            return x.astype(np.float32)
        self._n_in += len(x)
        # output n needs input up to q = (n*down + delay) // up
        n_stop = (self._n_in * self.up - 1 - self.delay) // self.down + 1 if self._n_in * self.up > self.delay else 0
        n_stop = max(n_stop, self._n_out)
        y = self._emit(x, n_stop)
        self._keep_history(x)
        return y

    def flush(self) -> np.ndarray:
        """The remaining output samples, with zeros after the end of the input."""
        total = -(-self._n_in * self.up // self.down)
        if self.identity or total <= self._n_out:
            return np.zeros(0, dtype=np.float32)
        need = (total - 1) * self.down + self.delay
        pad = max(0, need // self.up + 1 - self._n_in)
        zeros = np.zeros(pad)
        self._n_in += pad
        y = self._emit(zeros, total)
        self._keep_history(zeros)
        return y


def resample_to(samples: np.ndarray, src_rate: int, dst_rate: int = 16000) -> np.ndarray:
    """Resample a whole float mono signal (same filter and timing as the streaming path)."""
    r = StreamResampler(src_rate, dst_rate)
    return np.concatenate([r.process(samples), r.flush()])
