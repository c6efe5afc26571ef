"""The capture thread: reads a source as fast as it gives frames and keeps only the newest.

Consumers never see a backlog: a slow vision step simply skips to the latest frame. For
reproducible headless runs ``lossless=True`` makes the thread wait until each frame was taken.

A camera that cannot be opened, or is lost, is retried with a bounded exponential back-off
(``backoff_first`` doubling to ``backoff_max``), and ``status`` says ``unavailable: <why>`` until a
frame comes again (then ``ok``; never ``ok`` before the first frame). Each change of status is told
to ``on_status`` (or logged) once; nothing is logged per retry.

A timeout is not a lost camera. A live source's ``read`` returns None when no frame came in time
(jetson-utils' ``Capture`` gives up after 1 s) and raises :class:`CameraUnavailable` when the camera
has failed (unplugged, the stream ended). A freshly opened live source has ``first_frame_grace_s`` to
give its first frame (Argus takes seconds to start a CSI sensor); after a frame, timeouts in a row are
still no loss until there has been no frame for ``lost_after_s``. Only an exception, or one of these two
silences, makes the camera lost (then it is closed and reopened). An image folder that was removed or
holds nothing decodable raises :class:`CameraUnavailable` from its ``read`` and is treated the same.

Each :class:`Frame` carries the source's ``device_image`` as ``device``: the CUDA image its ``image``
array views when the source captured into shared CPU/GPU memory (jetson-utils), else None.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from kiosk.vision.sources import CameraUnavailable, FrameSource, pace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    index: int
    t: float  # the gate's clock: monotonic for live cameras, media time for files
    wall: float  # perf_counter when it was captured, for latency figures
    # The CUDA image (jetson-utils cudaImage) that ``image`` views, when the source captured into memory
    # shared by CPU and GPU: a detector may use it without a trip through host memory. None otherwise.
    device: Any = None


class Capture(threading.Thread):
    backoff_first = 0.5  # seconds before the first retry of a camera that cannot be opened or was lost
    backoff_max = 5.0  # the wait doubles up to this
    first_frame_grace_s = 15.0  # a live camera just opened may take this long to give its first frame …
    lost_after_s = 5.0  # … and is lost after that when it gives none for this long (timeouts in a row)
    miss_wait_s = 0.05  # pause after a read without a frame (an OpenCV camera may return at once)

    def __init__(
        self,
        open_source: Callable[[], FrameSource],
        media_clock: bool = False,
        lossless: bool = False,
        paced: bool = True,
        on_status: Optional[Callable[[str], None]] = None,
    ) -> None:
        super().__init__(name="capture", daemon=True)
        self._open = open_source
        self.media_clock = media_clock
        self.lossless = lossless
        self.paced = paced
        self.on_status = on_status
        self._cond = threading.Condition()
        self._latest: Optional[Frame] = None
        self._taken = -1
        self._halt = threading.Event()
        self.ended = False
        self.frames = 0
        self.open_attempts = 0
        self.status = "starting"
        self.heartbeat = time.monotonic()  # the loop's last turn, back-off waits included (kiosk.runtime.watchdog)

    def stop(self) -> None:
        self._halt.set()
        with self._cond:
            self._cond.notify_all()

    def get(self, after: int = -1, timeout: float = 1.0) -> Optional[Frame]:
        """The newest frame with index > ``after``; None on timeout or once the stream has ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest.index <= after:
                if self.ended or self._halt.is_set():
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame = self._latest
            self._taken = frame.index
            self._cond.notify_all()
            return frame

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            if self.on_status is not None:  # whoever listens tells the person
                self.on_status(status)
            else:
                (log.info if status == "ok" else log.error)("camera %s", status)

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self.lossless:
                while self._latest is not None and self._taken < self._latest.index and not self._halt.is_set():
                    self._cond.wait(0.1)
            self._latest = frame
            self._cond.notify_all()

    def run(self) -> None:
        backoff = self.backoff_first
        source: Optional[FrameSource] = None
        index = 0
        started = last_frame = time.monotonic()
        first_frame_due: Optional[float] = None  # while a freshly opened source has given no frame
        try:
            while not self._halt.is_set():
                self.heartbeat = time.monotonic()
                if source is None:
                    self.open_attempts += 1
                    try:
                        source = self._open()
                    except Exception as exc:  # CameraUnavailable, or whatever an odd device raises
                        self._set_status("unavailable: {}".format(_why(exc)))
                        self._halt.wait(backoff)
                        backoff = min(backoff * 2, self.backoff_max)
                        continue
                    started = time.monotonic() - index / max(source.fps, 1e-6)
                    last_frame = time.monotonic()
                    first_frame_due = last_frame + self.first_frame_grace_s
                try:
                    image = source.read()
                except Exception as exc:  # a folder removed or all junk, a driver error
                    image, lost = None, _why(exc)
                else:
                    lost = ""
                if image is None and not lost:
                    if not source.live:
                        break  # end of the file: the stream is over
                    lost = self._silence(source, last_frame, first_frame_due)
                    if not lost:
                        self._halt.wait(self.miss_wait_s)  # a timeout, not (yet) a lost camera
                        continue
                if image is None:
                    self._set_status("unavailable: {}".format(lost))
                    _close(source)
                    source = None
                    self._halt.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
                last_frame, first_frame_due, backoff = time.monotonic(), None, self.backoff_first
                self._set_status("ok")
                if self.paced:
                    pace(source, started, index)
                t = index / source.fps if self.media_clock else time.monotonic()
                self._publish(Frame(image, index, t, time.perf_counter(), getattr(source, "device_image", None)))
                index += 1
                self.frames = index
        finally:
            if source is not None:
                _close(source)
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _silence(self, source: FrameSource, last_frame: float, first_frame_due: Optional[float]) -> str:
        """Why a live camera that just timed out is lost, or "" while the timeouts are still no loss."""
        now = time.monotonic()
        if first_frame_due is not None:
            if now < first_frame_due:
                return ""
            return "{} gave no frame in the {:g} s after it was opened".format(source.name, self.first_frame_grace_s)
        if now - last_frame < self.lost_after_s:
            return ""
        return "{} stopped giving frames (none for {:g} s)".format(source.name, self.lost_after_s)


def _why(exc: BaseException) -> str:
    """A camera fault on one line: CameraUnavailable's own message, else the exception's type and message."""
    text = str(exc) if isinstance(exc, CameraUnavailable) else "{}: {}".format(type(exc).__name__, exc)
    return " ".join(text.split())[:300]


def _close(source: FrameSource) -> None:
    try:
        source.close()
    except Exception as exc:  # a device that is gone may fail to close too
        log.debug("camera: closing %s failed: %s", source.name, exc)
