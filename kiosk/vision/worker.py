"""The vision worker: newest frame in, face/mask and pass events out.

Runs in its own thread at the edge. Each frame: faces and their mask class (tracked so the
decision core can vote per person), then QR codes, each checked against the community key and
the registry before the core sees it. Nothing here decides anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.core.events import Event, FaceObservation, FacesSeen, PassCheck, PassPresented
from kiosk.vision.capture import Capture, Frame
from kiosk.vision.tracker import IouTracker

log = logging.getLogger(__name__)


@dataclass
class FrameResult:
    """What the worker made of one frame (for the UI, the demo video and the figures)."""

    frame: Frame
    faces: Tuple[FaceObservation, ...]
    codes: List[str]
    checks: List[PassCheck]
    ms: float  # the whole vision step
    timings: Dict[str, float] = field(default_factory=dict)


class VisionWorker(threading.Thread):
    # The newest vision-step times kept (a demo scenario has about a hundred frames; a live camera at 30 fps
    # fills this in about five minutes, and the operator's figures use the last few hundred).
    step_ms_keep = 10000

    def __init__(
        self,
        capture: Capture,
        detector: Optional[Any],
        qr_reader: Optional[Any],
        check_pass: Callable[[str], PassCheck],
        emit: Callable[[Event, float, Frame], None],
        on_result: Optional[Callable[[FrameResult], None]] = None,
    ) -> None:
        super().__init__(name="vision", daemon=True)
        self.capture = capture
        self.detector = detector
        self.qr_reader = qr_reader
        self.check_pass = check_pass
        self.emit = emit
        self.on_result = on_result or (lambda result: None)
        self.tracker = IouTracker()
        self._halt = threading.Event()
        self._checked: Dict[str, Tuple[float, PassCheck]] = {}
        self.step_ms: Deque[float] = deque(maxlen=self.step_ms_keep)  # newest last; appended by this thread only

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        last = -1
        while not self._halt.is_set():
            frame = self.capture.get(after=last, timeout=0.5)
            if frame is None:
                if self.capture.ended:
                    break
                continue
            last = frame.index
            try:
                result = self.process(frame)
            except Exception:  # one bad frame must not stop the kiosk's eyes
                log.exception("vision: frame %d failed", frame.index)
                continue
            self.step_ms.append(result.ms)
            self.on_result(result)

    def process(self, frame: Frame) -> FrameResult:
        started = time.perf_counter()
        timings: Dict[str, float] = {}
        faces = self._faces(frame.image, timings)
        self.emit(FacesSeen(faces, frame.index), frame.t, frame)
        codes: List[str] = []
        checks: List[PassCheck] = []
        if self.qr_reader is not None:
            t0 = time.perf_counter()
            codes = list(self.qr_reader.read(frame.image))
            timings["qr_ms"] = (time.perf_counter() - t0) * 1000
            for code in codes:
                check = self._check(code)
                checks.append(check)
                self.emit(PassPresented(check, frame.index), frame.t, frame)
        ms = (time.perf_counter() - started) * 1000
        return FrameResult(frame, faces, codes, checks, ms, timings)

    def _faces(self, image: np.ndarray, timings: Dict[str, float]) -> Tuple[FaceObservation, ...]:
        if self.detector is None:
            return ()
        t0 = time.perf_counter()
        detections: Sequence[Any] = self.detector.detect(image)
        timings["detect_ms"] = (time.perf_counter() - t0) * 1000
        ids = self.tracker.update([tuple(d.box) for d in detections])
        return tuple(
            FaceObservation(track, d.mask, float(d.confidence), tuple(int(v) for v in d.box))  # type: ignore[arg-type]
            for track, d in zip(ids, detections)
        )

    def _check(self, code: str) -> PassCheck:
        """Verify a payload, re-using the verdict for a second while the same code stays in view."""
        now = time.monotonic()
        cached = self._checked.get(code)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        check = self.check_pass(code)
        if len(self._checked) > 64:
            self._checked.clear()
        self._checked[code] = (now, check)
        return check
