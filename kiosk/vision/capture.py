"""The capture thread: reads a source as fast as it gives frames and keeps only the newest.

Consumers never see a backlog: a slow vision step simply skips to the latest frame. For
reproducible headless runs ``lossless=True`` makes the thread wait until each frame was taken.
A live camera that drops out is reopened with a back-off, and its state is reported.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from kiosk.vision.sources import CameraUnavailable, FrameSource, pace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    index: int
    t: float  # the gate's clock: monotonic for live cameras, media time for files
    wall: float  # perf_counter when it was captured, for latency figures


class Capture(threading.Thread):
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
        self.status = "starting"

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
                (log.info if status == "ok" else log.error)("camera: %s", status)

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self.lossless:
                while self._latest is not None and self._taken < self._latest.index and not self._halt.is_set():
                    self._cond.wait(0.1)
            self._latest = frame
            self._cond.notify_all()

    def run(self) -> None:
        backoff = 0.5
        source: Optional[FrameSource] = None
        index = 0
        started = time.monotonic()
        try:
            while not self._halt.is_set():
                if source is None:
                    try:
                        source = self._open()
                    except CameraUnavailable as exc:
                        self._set_status("unavailable: {}".format(exc))
                        self._halt.wait(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                    backoff, started = 0.5, time.monotonic() - index / max(source.fps, 1e-6)
                image = source.read()
                if image is None:
                    if not source.live:
                        break  # end of the file: the stream is over
                    self._set_status("unavailable: {} stopped giving frames".format(source.name))
                    source.close()
                    source = None
                    continue
                self._set_status("ok")
                if self.paced:
                    pace(source, started, index)
                t = index / source.fps if self.media_clock else time.monotonic()
                self._publish(Frame(image, index, t, time.perf_counter()))
                index += 1
                self.frames = index
        finally:
            if source is not None:
                source.close()
            with self._cond:
                self.ended = True
                self._cond.notify_all()
