"""Worker threads → the GUI thread, through Qt signals only.

The capture, vision, microphone, decider and gate threads call the plain methods here
(``offer_frame``, ``on_action``, ``report``); each emits a signal that Qt queues onto the GUI
thread. Frames are coalesced: the newest one replaces an undisplayed one, so a slow screen
drops stale frames instead of queueing them, and the conversion to a QImage (colour, scale)
is done in the vision thread, not in the GUI thread.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, Optional, Tuple

import cv2
import numpy as np
from PyQt5.QtCore import QElapsedTimer, QObject, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QImage

from kiosk.bench import timing_summary
from kiosk.core.events import FaceObservation


@dataclass(frozen=True)
class ShownFrame:
    """A frame ready to paint: scaled to the view, its faces in the scaled image's pixels."""

    image: QImage
    faces: Tuple[Tuple[FaceObservation, Tuple[int, int, int, int]], ...]
    index: int
    wall: float  # perf_counter at capture: frame-to-display latency starts here
    source_size: Tuple[int, int]
    offered: float = 0.0  # perf_counter when the vision step had finished with it


def to_qimage(image: np.ndarray, fit: Optional[Tuple[int, int]]) -> Tuple[QImage, float]:
    """A BGR frame as an RGB QImage scaled to fit ``fit`` (w, h) keeping its aspect; returns (image, scale)."""
    h, w = image.shape[:2]
    scale = 1.0
    if fit is not None and fit[0] > 0 and fit[1] > 0:
        scale = min(fit[0] / w, fit[1] / h)
        if abs(scale - 1.0) > 0.01:
            size = (max(1, int(w * scale)), max(1, int(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        else:
            scale = 1.0
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    rgb = np.ascontiguousarray(rgb)
    qimage = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format_RGB888).copy()
    return qimage, scale


class UiBridge(QObject):
    frame_ready = pyqtSignal()  # a new ShownFrame waits in take_frame()
    action = pyqtSignal(object, object)  # (kiosk.core.events.Action, kiosk.core.machine.State)
    status = pyqtSignal(str, str)  # (part, "ok" or what is wrong): camera, microphone, model, gate, voice, font
    notice = pyqtSignal(str)  # a passing message (e.g. what a new config restarted)
    config_arrived = pyqtSignal(object)  # a Config the office sent (kiosk.fleet): applied as if the operator saved it
    caption = pyqtSignal(str)  # the demo's scenario title
    finished = pyqtSignal(object)  # the demo's report

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: Optional[ShownFrame] = None
        self._signalled = False
        self.display_size: Optional[Tuple[int, int]] = None  # set by the GUI thread; read by the vision thread
        self.offered = 0
        self.dropped = 0  # frames replaced before the GUI took them
        self._last_image: Optional[np.ndarray] = None

    # ---- any thread -------------------------------------------------------------------------

    def offer_frame(self, result: Any) -> None:
        """A vision worker's FrameResult (``on_result`` callback): convert, keep only the newest."""
        offered = time.perf_counter()
        frame = result.frame
        self._last_image = frame.image
        qimage, scale = to_qimage(frame.image, self.display_size)
        faces = tuple(
            (face, (int(face.box[0] * scale), int(face.box[1] * scale), int(face.box[2] * scale), int(face.box[3] * scale)))
            for face in result.faces
        )
        shown = ShownFrame(qimage, faces, frame.index, frame.wall, (frame.image.shape[1], frame.image.shape[0]), offered)
        with self._lock:
            self.offered += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = shown
            signal = not self._signalled
            self._signalled = True
        if signal:  # at most one frame signal waits in the GUI's queue
            self.frame_ready.emit()

    def take_frame(self) -> Optional[ShownFrame]:
        with self._lock:
            shown, self._pending = self._pending, None
            self._signalled = False
            return shown

    def latest_image(self) -> Optional[np.ndarray]:
        """The newest camera frame (BGR), for the operator screen's preview of the running camera."""
        return self._last_image

    def on_action(self, action: Any, state: Any) -> None:
        """A Kiosk listener (decider thread)."""
        self.action.emit(action, state)

    def report(self, part: str, text: str) -> None:
        self.status.emit(part, text)


class Metrics(QObject):
    """Frame-to-display latency (capture → painted) and UI stalls (a 10 ms heartbeat that comes late)."""

    def __init__(self, heartbeat_ms: int = 10, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.latencies_ms: Deque[float] = deque(maxlen=20000)  # capture → painted
        self.ui_ms: Deque[float] = deque(maxlen=20000)  # vision result → painted: the UI's own share
        self.shown_at: Deque[float] = deque(maxlen=120)
        self.frames_shown = 0
        self.heartbeat_ms = heartbeat_ms
        self.longest_stall_ms = 0.0
        self.stalls_over_50ms = 0
        self.beats = 0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.PreciseTimer)
        self._timer.timeout.connect(self._beat)
        self._clock = QElapsedTimer()

    def start(self) -> None:
        self._clock.start()
        self._timer.start(self.heartbeat_ms)

    def stop(self) -> None:
        self._timer.stop()

    def reset(self) -> None:
        self.latencies_ms.clear()
        self.ui_ms.clear()
        self.frames_shown = 0
        self.longest_stall_ms = 0.0
        self.stalls_over_50ms = 0
        self.beats = 0
        if self._clock.isValid():
            self._clock.restart()

    def _beat(self) -> None:
        gap = self._clock.restart()  # ms since the last beat
        self.beats += 1
        stall = max(0.0, gap - self.heartbeat_ms)
        if self.beats > 1:
            self.longest_stall_ms = max(self.longest_stall_ms, stall)
            if stall > 50:
                self.stalls_over_50ms += 1

    def frame_shown(self, wall: float, offered: float = 0.0) -> None:
        now = time.perf_counter()
        self.latencies_ms.append((now - wall) * 1000)
        if offered:
            self.ui_ms.append((now - offered) * 1000)
        self.shown_at.append(now)
        self.frames_shown += 1

    def fps(self) -> float:
        if len(self.shown_at) < 2:
            return 0.0
        span = self.shown_at[-1] - self.shown_at[0]
        if time.perf_counter() - self.shown_at[-1] > 2.0:
            return 0.0  # nothing shown lately
        return round((len(self.shown_at) - 1) / span, 1) if span > 0 else 0.0

    def latency_p50(self) -> Optional[float]:
        recent = list(self.latencies_ms)[-300:]
        return round(statistics.median(recent), 1) if recent else None

    def summary(self) -> Dict[str, Any]:
        return {
            "frames_shown": self.frames_shown,
            "frame_to_display_ms": timing_summary(list(self.latencies_ms)),
            "vision_result_to_display_ms": timing_summary(list(self.ui_ms)),
            "longest_ui_stall_ms": round(self.longest_stall_ms, 1),
            "ui_stalls_over_50ms": self.stalls_over_50ms,
            "heartbeat_ms": self.heartbeat_ms,
        }
