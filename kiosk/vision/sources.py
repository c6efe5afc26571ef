"""Camera sources behind one interface. Files stand in for cameras through the same code.

``open_source(spec)`` understands:

* ``0``, ``1`` …            an OpenCV (V4L2) camera index
* ``/dev/videoN``           a V4L2 camera (jetson-utils when importable, else OpenCV)
* ``csi://N``               a Jetson CSI camera (jetson-utils)
* ``rtsp://…``, ``http://…`` a network stream (jetson-utils when importable, else OpenCV/FFmpeg)
* a folder                  its images in name order
* a file                    a video (or one still image)

An image folder reads each file itself and decodes it from memory (:func:`decode_image`): a file that is
gone, empty, truncated, absurdly large or not an image is skipped (reported at most once per
``SKIP_REPORT_S`` per folder, with a count), never handed to OpenCV's file reader, whose own warning
would repeat on every pass. A folder that has been removed, or in which a whole pass finds nothing
decodable, raises :class:`CameraUnavailable`: the capture thread reports it and retries with back-off.
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import cv2
import numpy as np

from kiosk.vision.image import to_bgr
from kiosk.vision.ratelimit import RateLimit

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 50_000_000  # a camera frame is never larger; a header claiming more is junk (or a bomb)
SKIP_REPORT_S = 30.0
_skips = RateLimit(SKIP_REPORT_S)  # "skipping unreadable image" per folder: one line per interval


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


def decode_image(data: bytes) -> Tuple[Optional[np.ndarray], str]:
    """(BGR uint8 image, "") or (None, why not) for the bytes of an image file. Never raises: an empty,
    truncated or oversized file, or one that is not an image, is refused before or by OpenCV's decoder."""
    if not data:
        return None, "empty file"
    head = data[:2]
    if head == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None, "truncated JPEG"  # libjpeg would print a warning on stderr and return a half-grey frame
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            width, height = header.size
    except Image.DecompressionBombError:
        return None, "too large for a camera frame"
    except Exception:  # not a format Pillow knows: OpenCV may still decode it
        width = height = 0
    if width * height > MAX_IMAGE_PIXELS:
        return None, "{}x{} pixels: too large for a camera frame".format(width, height)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        return None, "OpenCV cannot decode it: {}".format(" ".join(str(exc).split())[-120:])
    frame = to_bgr(image) if image is not None else None
    return (frame, "") if frame is not None else (None, "not an image OpenCV can decode")


def read_image_file(path: "Union[str, Path]") -> Tuple[Optional[np.ndarray], str]:
    """:func:`decode_image` of a file; a file that cannot be read gives (None, the reason)."""
    try:
        with open(str(path), "rb") as f:
            data = f.read(MAX_IMAGE_PIXELS)  # no camera frame file is larger than that
    except OSError as exc:
        return None, exc.strerror or str(exc)
    return decode_image(data)


class ImageFolder(FrameSource):
    """The images of a folder (or a list of image files) played as a stream; unreadable files are skipped.
    Raises :class:`CameraUnavailable` from ``read`` when its folder has been removed, or when a whole pass
    over the files found nothing decodable."""

    live = False

    def __init__(self, paths: List[Path], fps: float = 10.0, loop: bool = False, name: str = "images",
                 folder: Optional[str] = None) -> None:
        if not paths:
            raise CameraUnavailable("no images in {}".format(name))
        self.name = "images:{}".format(name)
        self.paths, self.fps, self.loop = paths, fps, loop
        self.folder = folder
        self.index = 0
        self.decoded = 0  # frames given
        self.skipped = 0  # files skipped

    @classmethod
    def from_folder(cls, folder: str, fps: float = 10.0, loop: bool = False) -> "ImageFolder":
        if not os.path.isdir(folder):
            raise CameraUnavailable("image folder {} does not exist".format(folder))
        try:
            paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        except OSError as exc:
            raise CameraUnavailable("cannot list image folder {}: {}".format(folder, exc.strerror or exc)) from None
        return cls(paths, fps, loop, name=folder, folder=folder)

    def read(self) -> Optional[np.ndarray]:
        misses = 0
        while True:
            if self.index >= len(self.paths):
                if not self.loop:
                    if self.decoded == 0:
                        raise CameraUnavailable("none of the {} images in {} can be decoded".format(
                            len(self.paths), self.name[len("images:"):]))
                    return None
                self.index = 0
            path = self.paths[self.index]
            self.index += 1
            frame, why = read_image_file(path)
            if frame is not None:
                self.decoded += 1
                return frame
            self.skipped += 1
            misses += 1
            if self.folder is not None and not os.path.isdir(self.folder):
                raise CameraUnavailable("image folder {} was removed".format(self.folder))
            if misses >= len(self.paths):
                raise CameraUnavailable("none of the {} images in {} can be decoded (e.g. {}: {})".format(
                    len(self.paths), self.name[len("images:"):], path.name, why))
            held = _skips.ready(self.name)
            if held is not None:
                log.warning("skipping unreadable image %s: %s%s", path, why,
                            " ({} more skipped in the last {:.0f} s)".format(held, SKIP_REPORT_S) if held else "")


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
            held = _skips.ready(self.name)
            if held is not None:  # at most once per SKIP_REPORT_S: the capture thread reports the lost camera
                log.warning("%s: capture failed: %s%s", self.name, exc, " ({} more)".format(held) if held else "")
            return None
        if image is None:  # a timeout: the capture thread decides when misses mean a lost camera
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
    if os.path.isabs(spec) or os.sep in spec:
        raise CameraUnavailable("camera source {} does not exist (it is not a camera index, device, URI, folder "
                                "or file)".format(spec))
    raise CameraUnavailable("camera source {!r} is not a camera index, device, URI, folder or file".format(spec))


def pace(source: FrameSource, started: float, frame_index: int) -> None:
    """Sleep so that a file plays at its frame rate (live cameras pace themselves)."""
    if source.live:
        return
    due = started + frame_index / source.fps
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
