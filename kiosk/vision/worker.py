"""The vision worker: newest frame in, face/mask and pass events out.

Runs in its own thread at the edge. Each frame: faces and their mask class (tracked so the
decision core can vote per person), then QR codes, each checked against the community key and
the registry before the core sees it. Nothing here decides anything.

A frame whose detection (or whole vision step) fails counts as a frame without faces, so a mask is
never confirmed and the gate stays closed. The worker's ``status`` turns to ``unavailable: <why>``
(told to ``on_status``) and the fault is logged at most once per ``fault_report_s`` with how many
frames failed, never a traceback per frame; ``status`` is ``ok`` again after ``recover_s`` without one.
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
from kiosk.vision.ratelimit import RateLimit
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
    fault_report_s = 30.0  # a fault that repeats on every frame is logged at most once in this time
    recover_s = 5.0  # status is ok again after this long without a failed frame

    def __init__(
        self,
        capture: Capture,
        detector: Optional[Any],
        qr_reader: Optional[Any],
        check_pass: Callable[[str], PassCheck],
        emit: Callable[[Event, float, Frame], None],
        on_result: Optional[Callable[[FrameResult], None]] = None,
        on_status: Optional[Callable[[str], None]] = None,
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
        self.on_status = on_status
        self._healthy = "ok" if detector is not None else "unavailable: no face/mask detector (the gate stays closed)"
        self.status = self._healthy
        self.failures = 0  # frames whose vision step failed, in all
        self._failed_at: Optional[float] = None
        self._frame_error: Optional[str] = None
        self._reports = RateLimit(self.fault_report_s)
        # a model that TensorRT could not load, or that fell back to ONNX Runtime while running, still works: the
        # status says "degraded: ..." (told to on_status) instead of "ok"
        watch = getattr(detector, "watch_backends", None)
        if watch is not None:
            watch(self._backend_fell_back)
        notes = getattr(detector, "backend_notes", None)
        if notes is not None and notes():
            self._backend_fell_back("; ".join(notes()))
        self.heartbeat = time.monotonic()  # the loop's last turn, idle waits included (kiosk.runtime.watchdog)

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        last = -1
        while not self._halt.is_set():
            self.heartbeat = time.monotonic()
            frame = self.capture.get(after=last, timeout=0.5)
            if frame is None:
                if self.capture.ended:
                    break
                continue
            last = frame.index
            self._frame_error = None
            result = None
            try:
                result = self.process(frame)
            except Exception as exc:  # one bad frame must not stop the kiosk's eyes
                self._frame_error = self._frame_error or _reason("vision step", exc)
            if self._frame_error is not None:
                self._failed(self._frame_error)
            else:
                self._recovered()
            if result is not None:
                self.step_ms.append(result.ms)
                self.on_result(result)

    def _backend_fell_back(self, text: str) -> None:
        self._healthy = "degraded: {}".format(text)
        if not self.status.startswith("unavailable"):
            self._set_status(self._healthy)

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            if self.on_status is not None:
                self.on_status(status)

    def _failed(self, reason: str) -> None:
        """Status unavailable; one log line per ``fault_report_s`` with the number of failed frames."""
        self.failures += 1
        self._failed_at = time.monotonic()
        if not self.status.startswith("unavailable"):
            self._reports.reset()  # a new fault: reported now
            self._set_status("unavailable: {} (no face or mask check: the gate stays closed)".format(reason))
        held = self._reports.ready()
        if held is not None:
            log.error("vision unavailable: %s (%d failed frame%s%s)", reason, held + 1, "" if held == 0 else "s",
                      "" if held == 0 else " in the last {:.0f} s".format(self.fault_report_s))

    def _recovered(self) -> None:
        if self._failed_at is not None and time.monotonic() - self._failed_at >= self.recover_s:
            self._failed_at = None
            if self._reports.ready("recovered") is not None:
                log.warning("vision: frames are processed again (%d failed frames in all)", self.failures)
            self._set_status(self._healthy)

    def process(self, frame: Frame) -> FrameResult:
        started = time.perf_counter()
        timings: Dict[str, float] = {}
        faces = self._faces(frame.image, timings, frame.device)
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

    def _faces(self, image: np.ndarray, timings: Dict[str, float], device: Any = None) -> Tuple[FaceObservation, ...]:
        if self.detector is None:
            return ()
        t0 = time.perf_counter()
        try:
            # device: the frame as a CUDA image (a jetson-utils camera), which the detector can feed to its engine
            detections: Sequence[Any] = (self.detector.detect(image) if device is None
                                         else self.detector.detect(image, device=device))
        except Exception as exc:  # counted as a frame without faces: no mask is confirmed, the gate stays closed
            self._frame_error = _reason("face/mask detection", exc)
            log.debug("vision: detection failed", exc_info=True)
            return ()
        timings["detect_ms"] = (time.perf_counter() - t0) * 1000
        ids = self.tracker.update([tuple(d.box) for d in detections])
        # the reading: the class, or UNSURE for an "incorrect" below the calibrated threshold (kiosk.vision.mask)
        return tuple(
            FaceObservation(track, getattr(d, "reading", d.mask), float(d.confidence),
                            tuple(int(v) for v in d.box))  # type: ignore[arg-type]
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


def _reason(what: str, exc: BaseException) -> str:
    """``face/mask detection failed: ModelError: …`` on one line, at most 300 characters."""
    return " ".join("{} failed: {}: {}".format(what, type(exc).__name__, exc).split())[:300]
