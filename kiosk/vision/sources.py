"""Camera sources behind one interface. Files stand in for cameras through the same code.

``open_source(spec)`` understands:

* ``0``, ``1`` …            an OpenCV (V4L2) camera index
* ``/dev/videoN``           a V4L2 camera (jetson-utils when importable, else OpenCV)
* ``csi://N``               a Jetson CSI camera (jetson-utils)
* ``rtsp://…``, ``http://…`` a network stream (jetson-utils when importable, else OpenCV/FFmpeg)
* a folder                  its images in name order
* a file                    a video (or one still image)
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, List, Optional

import cv2
import numpy as np

from kiosk.vision.image import to_bgr

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class CameraUnavailable(RuntimeError):
    """The camera cannot be opened or has stopped; the message says which and why."""


class FrameSource:
    """Gives BGR uint8 frames. ``read()`` returns None at the end of a file or when a camera drops out."""

    name = "source"
    live = True  # live sources are never paced; files are paced to ``fps`` unless told otherwise
    fps = 15.0

    def read(self) -> Optional[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _quiet_opencv() -> None:
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # older OpenCV builds without the logging module
        pass


class OpenCVCamera(FrameSource):
    def __init__(self, device: Any, width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        self.name = "opencv:{}".format(device)
        self.device = device
        self.fps = fps
        _quiet_opencv()  # our own message says what is wrong; OpenCV's warnings would repeat on every retry
        self.cap = cv2.VideoCapture(device)
        if not self.cap.isOpened():
            raise CameraUnavailable("cannot open camera {!r}: is it plugged in, and is it in use?".format(device))
        self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.cap.set(cv2.CAP_PROP_FPS, fps)
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a backlog

    def read(self) -> Optional[np.ndarray]:
        ok, frame = self.cap.read()
        return to_bgr(frame) if ok else None

    def close(self) -> None:
        self.cap.release()


class VideoFile(FrameSource):
    live = False

    def __init__(self, path: str, loop: bool = False) -> None:
        self.name = "video:{}".format(path)
        self.path, self.loop = path, loop
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise CameraUnavailable("cannot open video file {}: missing or not a video OpenCV can read".format(path))
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0) or 15.0

    def read(self) -> Optional[np.ndarray]:
        ok, frame = self.cap.read()
        if not ok and self.loop:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
        return to_bgr(frame) if ok else None

    def close(self) -> None:
        self.cap.release()


class ImageFolder(FrameSource):
    """The images of a folder (or a list of image files) played as a stream; unreadable files are skipped."""

    live = False

    def __init__(self, paths: List[Path], fps: float = 10.0, loop: bool = False, name: str = "images") -> None:
        if not paths:
            raise CameraUnavailable("no images in {}".format(name))
        self.name = "images:{}".format(name)
        self.paths, self.fps, self.loop = paths, fps, loop
        self.index = 0

    @classmethod
    def from_folder(cls, folder: str, fps: float = 10.0, loop: bool = False) -> "ImageFolder":
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return cls(paths, fps, loop, name=folder)

    def read(self) -> Optional[np.ndarray]:
        while True:
            if self.index >= len(self.paths):
                if not self.loop:
                    return None
                self.index = 0
            path = self.paths[self.index]
            self.index += 1
            frame = to_bgr(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
            if frame is not None:
                return frame
            log.warning("skipping unreadable image %s", path)


class ArraySource(FrameSource):
    """Frames already in memory (the demo's rendered scenarios); the same path as any other source."""

    live = False

    def __init__(self, frames: List[np.ndarray], fps: float = 10.0, name: str = "frames") -> None:
        self.frames, self.fps, self.name = frames, fps, name
        self.index = 0

    def read(self) -> Optional[np.ndarray]:
        if self.index >= len(self.frames):
            return None
        frame = self.frames[self.index]
        self.index += 1
        return to_bgr(frame)


class JetsonVideoSource(FrameSource):
    """jetson-utils ``videoSource``: CSI and V4L2 cameras, RTSP, with hardware decoding on a Jetson."""

    def __init__(self, uri: str, width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        try:
            from jetson_utils import cudaDeviceSynchronize, cudaToNumpy, videoSource  # type: ignore[import-not-found]
        except ImportError:
            raise CameraUnavailable("{} needs jetson-utils (JetPack); it is not installed here".format(uri)) from None
        self.name = "jetson:{}".format(uri)
        self.fps = fps
        self._to_numpy, self._sync = cudaToNumpy, cudaDeviceSynchronize
        options = ["--input-width={}".format(width), "--input-height={}".format(height), "--input-rate={}".format(fps)]
        try:
            self.stream = videoSource(uri, argv=options)
        except Exception as exc:  # jetson-utils raises plain Exception on open failure
            raise CameraUnavailable("cannot open camera {}: {}".format(uri, exc)) from None

    def read(self) -> Optional[np.ndarray]:
        try:
            image = self.stream.Capture(format="rgb8", timeout=1000)
        except Exception as exc:
            log.warning("%s: capture failed: %s", self.name, exc)
            return None
        if image is None:  # timeout
            return None
        self._sync()
        return cv2.cvtColor(self._to_numpy(image), cv2.COLOR_RGB2BGR)

    def close(self) -> None:
        self.stream.Close()


def _jetson_utils_available() -> bool:
    try:
        import jetson_utils  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def open_source(spec: str, width: int = 640, height: int = 480, fps: float = 15.0, loop: bool = False) -> FrameSource:
    """The frame source for a camera spec (see module doc); raises CameraUnavailable with the reason."""
    spec = str(spec).strip()
    if not spec:
        raise CameraUnavailable("camera.source is empty")
    if spec.isdigit():
        return OpenCVCamera(int(spec), width, height, fps)
    if spec.startswith("csi://"):
        return JetsonVideoSource(spec, width, height, fps)
    if spec.startswith("/dev/video"):
        if _jetson_utils_available():
            return JetsonVideoSource(spec, width, height, fps)
        return OpenCVCamera(spec, width, height, fps)
    if "://" in spec:
        if _jetson_utils_available():
            return JetsonVideoSource(spec, width, height, fps)
        return OpenCVCamera(spec, width, height, fps)
    if os.path.isdir(spec):
        return ImageFolder.from_folder(spec, fps, loop)
    if os.path.isfile(spec):
        if Path(spec).suffix.lower() in IMAGE_SUFFIXES:
            return ImageFolder([Path(spec)], fps, loop, name=spec)
        return VideoFile(spec, loop)
    raise CameraUnavailable("camera source {!r} is not a camera index, device, URI, folder or file".format(spec))


def pace(source: FrameSource, started: float, frame_index: int) -> None:
    """Sleep so that a file plays at its frame rate (live cameras pace themselves)."""
    if source.live:
        return
    due = started + frame_index / source.fps
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
