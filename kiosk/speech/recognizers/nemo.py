"""``nemo``: a NeMo ASR checkpoint (``.nemo``) through ``ASRModel.restore_from(path).transcribe([...])``.
NeMo (and torch) are heavy and optional: imported only when a recognizer is built."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .base import RATE, Recognition, Recognizer, RecognizerUnavailable, float16k

__all__ = ["NemoRecognizer"]


class NemoRecognizer(Recognizer):
    """A NeMo ASR checkpoint (``.nemo``). NeMo (and torch) are imported only here, when built.

    Runs CTC, RNNT and hybrid models alike through ``model.transcribe([wav])`` (NeMo 1.x: strings, or
    ``(best, all)`` for RNNT; NeMo 2.x/3.x: ``Hypothesis`` objects)."""

    def __init__(self, path: str, device: str = "auto") -> None:
        try:
            from nemo.collections.asr.models import ASRModel
        except Exception as exc:  # ImportError, or one of NeMo's many optional dependencies
            raise RecognizerUnavailable("NeMo is not installed ({}): pip install 'dabai-kiosk[nemo]' "
                                        "(heavy: torch + nemo_toolkit[asr])".format(exc)) from exc
        if not Path(path).is_file():
            raise RecognizerUnavailable("NeMo model {} not found".format(path))
        map_location = None if device == "auto" else device
        try:  # a truncated or foreign file raises whatever tarfile / torch / hydra raise
            model = ASRModel.restore_from(str(path), map_location=map_location)
        except Exception as exc:
            raise RecognizerUnavailable("NeMo cannot load {}: {}: {}".format(path, type(exc).__name__, exc)) from exc
        if not callable(getattr(model, "transcribe", None)):  # e.g. a FastPitch .nemo given as listen.model
            raise RecognizerUnavailable("{} is a NeMo {}, not a speech recognizer (ASR) model".format(
                path, type(model).__name__))
        model.eval()
        self.model = model
        self.name = "nemo:{}".format(Path(path).name)
        try:  # NeMo >= 1.21 can hide its per-call progress bar
            import inspect

            self._quiet = {"verbose": False} if "verbose" in inspect.signature(model.transcribe).parameters else {}
        except (TypeError, ValueError):
            self._quiet = {}

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        from kiosk.audio.wavfile import write_wav

        t0 = time.perf_counter()
        x = float16k(samples_16k)
        if x.size == 0:  # NeMo's feature extractor fails on an empty file
            return Recognition(text="", ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)
        fd, wav = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        try:
            write_wav(wav, x, RATE)
            out: Any = self.model.transcribe([wav], batch_size=1, **self._quiet)
        finally:
            os.unlink(wav)
        if isinstance(out, tuple):  # RNNT models of NeMo 1.x: (best, all)
            out = out[0]
        first = out[0] if out else ""
        if isinstance(first, (list, tuple)):  # n-best of one file
            first = first[0] if first else ""
        text = getattr(first, "text", first)
        return Recognition(text=str(text or "").strip(), ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)
