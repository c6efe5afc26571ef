"""Camera sources behind one interface. Files stand in for cameras through the same code.

``open_source(spec)`` understands (``parse_camera_spec`` turns the text into a :class:`CameraSpec`):

* ``0``, ``1`` …                     an OpenCV (V4L2) camera index
* ``v4l2:///dev/videoN``, ``/dev/videoN``  a V4L2 camera (jetson-utils when importable, else OpenCV)
* ``csi://N``                        a Jetson CSI sensor through nvarguscamerasrc: jetson-utils when importable,
                                     else OpenCV's GStreamer backend (JetPack's cv2), else refused with the reason
* ``rtsp://…``                       a network camera: jetson-utils (hardware decoding) when importable, else
                                     OpenCV's GStreamer with nvv4l2decoder where both are there, else OpenCV/FFmpeg
* ``http(s)://``, ``rtp://`` …       other network streams (jetson-utils for rtp, else OpenCV/FFmpeg)
* ``file://PATH``, a plain path      a folder (its images in name order), an image, or a video

``csi://`` and ``v4l2://`` take ``?width=&height=&fps=&flip=`` to override ``[camera]`` for that camera.
``flip`` (none, rotate-180, horizontal, vertical, clockwise, counterclockwise) is done by nvvidconv or
jetson-utils where the frames pass through them (CSI, the GStreamer RTSP pipeline), else with OpenCV.

A live source's ``read`` returns None for a timeout (no frame yet: a CSI sensor takes seconds to start)
and raises :class:`CameraUnavailable` for a real failure (the device is gone, the stream ended); the
capture thread decides when timeouts add up to a lost camera. A jetson-utils source converts each frame
to BGR on the GPU into a small pool of shared CPU/GPU images: ``read`` returns a zero-copy numpy view of
one and ``device_image`` is that CUDA image, so the detector can use it without a trip through host memory.

An image folder reads each file itself and decodes it from memory (:func:`decode_image`): a file that is
gone, empty, truncated, absurdly large or not an image is skipped (reported at most once per
``SKIP_REPORT_S`` per folder, with a count), never handed to OpenCV's file reader, whose own warning
would repeat on every pass. A folder that has been removed, or in which a whole pass finds nothing
decodable, raises :class:`CameraUnavailable`: the capture thread reports it and retries with back-off.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qsl

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


class CameraSpecError(CameraUnavailable):
    """``camera.source`` is not a camera URI, device, index, folder or file that this kiosk understands."""


class FrameSource:
    """Gives BGR uint8 frames. ``read()`` returns None at the end of a file, or for a live camera's timeout
    (no frame this time); it raises :class:`CameraUnavailable` when a camera has failed."""

    name = "source"
    live = True  # live sources are never paced; files are paced to ``fps`` unless told otherwise
    fps = 15.0
    # The CUDA image (jetson-utils cudaImage) that the array of the last ``read`` views, when the source
    # captured into memory shared by CPU and GPU; None for every source that did not.
    device_image: Any = None

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
    """A camera through OpenCV: an index or device (V4L2), or a stream URL (FFmpeg)."""

    def __init__(self, device: Any, width: int = 640, height: int = 480, fps: float = 15.0,
                 name: Optional[str] = None) -> None:
        self.name = "opencv:{}".format(name or device)
        self.device = device
        self.fps = fps
        # A V4L2 node that vanishes is an unplugged camera: a real failure, not a timeout.
        node = "/dev/video{}".format(device) if isinstance(device, int) else str(device)
        self.node = node if node.startswith("/dev/") and os.path.exists(node) else None
        _quiet_opencv()  # our own message says what is wrong; OpenCV's warnings would repeat on every retry
        self.cap = cv2.VideoCapture(device)
        if not self.cap.isOpened():
            raise CameraUnavailable("cannot open camera {!r}: is it plugged in, and is it in use?".format(name or device))
        self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.cap.set(cv2.CAP_PROP_FPS, fps)
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a backlog

    def read(self) -> Optional[np.ndarray]:
        ok, frame = self.cap.read()
        if not ok and self.node is not None and not os.path.exists(self.node):
            raise CameraUnavailable("{} was unplugged".format(self.node))
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


# ---- camera specs ---------------------------------------------------------------------------------

FLIPS = ("none", "rotate-180", "horizontal", "vertical", "clockwise", "counterclockwise")
# nvvidconv's flip-method (GstNvVideoFlipMethod): 5 and 7 are the diagonal flips, which no kiosk needs.
NVVIDCONV_FLIP = {"none": 0, "counterclockwise": 1, "rotate-180": 2, "clockwise": 3, "horizontal": 4, "vertical": 6}
# jetson-utils' --input-flip names (videoOptions::FlipMethod).
JETSON_FLIP = {"none": "none", "counterclockwise": "counterclockwise", "rotate-180": "rotate-180",
               "clockwise": "clockwise", "horizontal": "horizontal", "vertical": "vertical"}
STREAM_SCHEMES = ("rtsp", "rtsps", "rtp", "rtmp", "http", "https", "udp")
URI_SCHEMES = ("csi", "v4l2", "file") + STREAM_SCHEMES
URI_OPTIONS = ("width", "height", "fps", "flip")  # a csi:// or v4l2:// URI's query may set these
RTSP_LATENCY_MS = 200  # the jitter buffer of an RTSP camera; GStreamer's 2000 ms would show a person late
SYS_ROOT = "/"  # where /sys and /dev are (the tests point it at a fake tree)


@dataclass(frozen=True)
class CameraSpec:
    """``camera.source`` taken apart: which kind of camera, where, and the options its URI sets."""

    kind: str  # "index", "v4l2", "csi", "stream" or "file" (a file, image or folder)
    location: str  # the index, the device path, the sensor number, the URL, or the path
    options: Dict[str, Any] = field(default_factory=dict)  # width / height / fps / flip from the URI's query
    scheme: str = ""  # the URI's scheme ("csi", "rtsp" …); "" for a bare index or path


def redact(text: str) -> str:
    """``text`` with the password of any URL in it starred: statuses are shown on screen and logged."""
    return re.sub(r"(://[^/@:\s]*):[^/@\s]*@", r"\1:***@", text)


def _camera_fields() -> Dict[str, Any]:
    import dataclasses

    from kiosk.config import CameraConfig

    return {f.name: f for f in dataclasses.fields(CameraConfig)}


def _option_value(key: str, text: str, spec: str) -> Any:
    """A URI option as [camera] would take it (same type, range and choices), or CameraSpecError."""
    f = _camera_fields()[key]
    kind, meta = type(f.default), f.metadata
    where = "camera source {!r}: {}={!r}".format(redact(spec), key, text)
    try:
        value = kind(text)
    except ValueError:
        raise CameraSpecError("{} must be a {}".format(where, "whole number" if kind is int else "number")) from None
    if "choices" in meta and value not in meta["choices"]:
        raise CameraSpecError("{} must be one of {}".format(where, ", ".join(meta["choices"])))
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and not lo <= value <= hi:  # also refuses NaN
        raise CameraSpecError("{} must be between {} and {}".format(where, lo, hi))
    return value


def _query(rest: str, spec: str) -> Tuple[str, Dict[str, Any]]:
    location, _, query = rest.partition("?")
    options: Dict[str, Any] = {}
    for key, text in parse_qsl(query, keep_blank_values=True):
        if key not in URI_OPTIONS:
            raise CameraSpecError("camera source {!r}: unknown option {!r} (known: {})".format(
                redact(spec), key, ", ".join(URI_OPTIONS)))
        options[key] = _option_value(key, text, spec)
    return location, options


def parse_camera_spec(text: str) -> CameraSpec:
    """``camera.source`` as a :class:`CameraSpec`; a bad URI raises :class:`CameraSpecError` saying why.
    Pure: nothing is opened or looked up (whether a device or path exists is found out when it is opened)."""
    spec = str(text).strip()
    if not spec:
        raise CameraSpecError("camera.source is empty")
    if spec.isdigit():
        return CameraSpec("index", str(int(spec)))
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", spec, re.S)
    if match is None:
        return CameraSpec("v4l2" if spec.startswith("/dev/video") else "file", spec)
    scheme, rest = match.group(1).lower(), match.group(2)
    shown = redact(spec)
    if scheme not in URI_SCHEMES:
        raise CameraSpecError("camera source {!r}: unknown scheme {}:// (known: {})".format(
            shown, scheme, ", ".join(s + "://" for s in URI_SCHEMES)))
    if scheme == "csi":
        location, options = _query(rest, spec)
        if not location.isdigit():
            raise CameraSpecError("camera source {!r}: csi:// takes a sensor number, e.g. csi://0".format(shown))
        return CameraSpec("csi", str(int(location)), options, scheme)
    if scheme == "v4l2":
        location, options = _query(rest, spec)
        if location.isdigit():
            location = "/dev/video" + location
        if not re.match(r"/dev/\S+$", location):
            raise CameraSpecError("camera source {!r}: v4l2:// takes a device path, e.g. v4l2:///dev/video0 "
                                  "(three slashes)".format(shown))
        return CameraSpec("v4l2", location, options, scheme)
    if scheme == "file":
        if not rest:
            raise CameraSpecError("camera source {!r}: file:// needs a path, e.g. file:///home/kiosk/clip.mp4".format(
                shown))
        return CameraSpec("file", rest, {}, scheme)
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if not host:
        raise CameraSpecError("camera source {!r}: a {}:// URL needs a host, e.g. rtsp://192.168.1.64:554/stream1".format(
            shown, scheme))
    if any(ch in spec for ch in '"\\') or any(ch.isspace() for ch in spec):
        # the URL goes into a GStreamer pipeline string: no quote may end it early
        raise CameraSpecError("camera source {!r}: a URL must not hold quotes, backslashes or spaces "
                              "(percent-encode them)".format(shown))
    return CameraSpec("stream", spec, {}, scheme)


# ---- what this machine has ------------------------------------------------------------------------


def jetson_utils_module() -> Any:
    """The jetson_utils module, or None where it is not installed (it is built from source on a Jetson)."""
    try:
        import jetson_utils  # type: ignore[import-not-found]
    except ImportError:
        return None
    return jetson_utils


def opencv_has_gstreamer() -> bool:
    """Whether this cv2 was built with GStreamer (JetPack's is; pip's opencv-python wheels are not)."""
    return re.search(r"^\s*GStreamer:\s*YES", cv2.getBuildInformation(), re.M) is not None


@functools.lru_cache(maxsize=None)
def gst_element_available(name: str) -> bool:
    """Whether GStreamer has the element ``name`` here (``gst-inspect-1.0 NAME``), e.g. nvv4l2decoder."""
    tool = shutil.which("gst-inspect-1.0")
    if tool is None:
        return False
    try:
        done = subprocess.run([tool, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _rate(fps: float) -> str:
    rate = Fraction(fps).limit_denominator(1001)
    return "{}/{}".format(rate.numerator, rate.denominator)


_TO_APPSINK = ("video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
               "appsink drop=true max-buffers=1 sync=false")  # newest frame only, never a backlog


def csi_pipeline(sensor: int, width: int, height: int, fps: float, flip: str = "none") -> str:
    """The GStreamer pipeline for a CSI sensor through OpenCV: Argus (the ISP) gives NV12 in NVMM memory,
    nvvidconv flips it in hardware and copies it out as BGRx, videoconvert drops the x."""
    return ("nvarguscamerasrc sensor-id={} ! video/x-raw(memory:NVMM),width={},height={},framerate={} ! "
            "nvvidconv flip-method={} ! {}".format(sensor, width, height, _rate(fps), NVVIDCONV_FLIP[flip],
                                                  _TO_APPSINK))


def rtsp_pipeline(url: str, flip: str = "none", latency_ms: int = RTSP_LATENCY_MS) -> str:
    """The GStreamer pipeline for an H.264 RTSP camera through OpenCV, decoded by the Jetson's hardware
    decoder (nvv4l2decoder). The stream keeps its own size."""
    return ('rtspsrc location="{}" latency={} ! rtph264depay ! h264parse ! nvv4l2decoder ! '
            "nvvidconv flip-method={} ! {}".format(url, latency_ms, NVVIDCONV_FLIP[flip], _TO_APPSINK))


# ---- sources that need a Jetson -------------------------------------------------------------------


class GStreamerCamera(FrameSource):
    """A GStreamer pipeline ending in a BGR appsink, through OpenCV's GStreamer backend (JetPack's cv2)."""

    def __init__(self, pipeline: str, name: str, fps: float = 15.0) -> None:
        self.name, self.pipeline, self.fps = name, pipeline, fps
        _quiet_opencv()
        self.cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if not self.cap.isOpened():
            raise CameraUnavailable("cannot open {} through GStreamer (pipeline: {})".format(name, redact(pipeline)))

    def read(self) -> Optional[np.ndarray]:
        ok, frame = self.cap.read()
        return to_bgr(frame) if ok else None

    def close(self) -> None:
        self.cap.release()


class JetsonVideoSource(FrameSource):
    """jetson-utils ``videoSource``: CSI and V4L2 cameras, RTSP, with hardware decoding on a Jetson.

    Each frame is captured as rgb8 (``Capture`` documents rgb8, rgba8, rgb32f and rgba32f) and converted to
    bgr8 on the GPU by ``cudaConvertColor`` into one of a few ``cudaAllocMapped`` images. Mapped memory is
    shared by CPU and GPU on a Jetson, so ``cudaToNumpy`` of it is a numpy view with no copy: ``read``
    returns that view and ``device_image`` is the CUDA image. videoSource reuses its own ring buffer; the
    pool is what lets a consumer keep a frame: an image still referenced outside the pool (by a Frame the
    vision worker or the screen holds, or by a view of its array) is not written again. The pool grows to
    ``pool_max`` images; past that the oldest is reused, with a warning.

    ``Capture`` returns None on a timeout, which ``read`` passes on. It raises on the end of a stream and on
    errors (and older jetson-utils on a timeout too): while ``IsStreaming()`` still says so, that is taken
    as a timeout (the capture thread gives up after ``lost_after_s``); a stream that has stopped raises
    :class:`CameraUnavailable`.
    """

    timeout_ms = 1000  # one Capture call waits this long
    pool_max = 8

    def __init__(self, uri: str, width: int = 640, height: int = 480, fps: float = 15.0, flip: str = "none") -> None:
        ju = jetson_utils_module()
        if ju is None:
            raise CameraUnavailable("{} needs jetson-utils (JetPack); it is not installed here".format(redact(uri)))
        self._ju = ju
        self.name = "jetson:{}".format(redact(uri))
        self.fps = fps
        self.options = ["--input-width={}".format(width), "--input-height={}".format(height),
                        "--input-rate={}".format(fps)]
        if flip != "none":
            self.options.append("--input-flip={}".format(JETSON_FLIP[flip]))
        if uri.startswith(("rtsp://", "rtsps://")):
            self.options.append("--input-rtsp-latency={}".format(RTSP_LATENCY_MS))
        self._pool: List[Tuple[Any, np.ndarray]] = []  # (bgr8 cudaImage, its numpy view)
        self._free_refs: List[int] = []  # each pool entry's reference count while nothing outside holds it
        self._next = 0
        self.device_image = None
        try:
            self.stream = ju.videoSource(uri, argv=self.options)
        except Exception as exc:  # jetson-utils raises plain Exception on open failure
            raise CameraUnavailable("cannot open camera {}: {}".format(redact(uri), exc)) from None

    def read(self) -> Optional[np.ndarray]:
        self.device_image = None
        try:
            rgb = self.stream.Capture(format="rgb8", timeout=self.timeout_ms)
        except Exception as exc:
            if not self._streaming():
                raise CameraUnavailable("{} stopped: {}".format(self.name, exc)) from None
            held = _skips.ready(self.name)
            if held is not None:  # at most once per SKIP_REPORT_S
                log.warning("%s: capture failed: %s%s", self.name, exc, " ({} more)".format(held) if held else "")
            return None
        if rgb is None:
            return None  # a timeout, not a lost camera (dusty-nv: `if img is None: continue`)
        image, array = self._slot(rgb.width, rgb.height)
        self._ju.cudaConvertColor(rgb, image)  # on the GPU, out of videoSource's ring buffer
        self._ju.cudaDeviceSynchronize()  # the CPU may read the view as soon as it is returned
        self.device_image = image
        return array

    def _streaming(self) -> bool:
        try:
            return bool(self.stream.IsStreaming())
        except Exception:
            return False

    def _refs(self, i: int) -> int:
        image, array = self._pool[i]
        return sys.getrefcount(image) + sys.getrefcount(array)

    def _slot(self, width: int, height: int) -> Tuple[Any, np.ndarray]:
        """A pool image of this size that nothing outside the pool holds, allocated while the pool is small."""
        if self._pool and (self._pool[0][0].width, self._pool[0][0].height) != (width, height):
            self._pool, self._free_refs, self._next = [], [], 0  # the stream changed size
        n = len(self._pool)
        for k in range(n):
            i = (self._next + k) % n
            if self._refs(i) <= self._free_refs[i]:
                self._next = (i + 1) % n
                return self._pool[i]
        if n < self.pool_max:
            image = self._ju.cudaAllocMapped(width=width, height=height, format="bgr8")
            self._pool.append((image, self._ju.cudaToNumpy(image)))
            del image  # the count below must see only the pool's own references
            self._free_refs.append(self._refs(n))
            self._next = 0
            return self._pool[n]
        i = self._next
        self._next = (i + 1) % n
        held = _skips.ready(self.name + ":pool")
        if held is not None:
            log.warning("%s: all %d frame buffers are still held; reusing the oldest", self.name, n)
        return self._pool[i]

    def close(self) -> None:
        self._pool, self._free_refs = [], []
        self.stream.Close()


# ---- flips on the CPU -----------------------------------------------------------------------------

_CPU_FLIPS = {
    "rotate-180": lambda image: cv2.rotate(image, cv2.ROTATE_180),
    "clockwise": lambda image: cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE),
    "counterclockwise": lambda image: cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE),
    "horizontal": lambda image: cv2.flip(image, 1),
    "vertical": lambda image: cv2.flip(image, 0),
}


def flip_image(image: np.ndarray, flip: str) -> np.ndarray:
    """``image`` flipped or rotated as ``flip`` says (``camera.flip``), on the CPU."""
    return image if flip == "none" else _CPU_FLIPS[flip](image)


class Flipped(FrameSource):
    """Another source's frames, flipped on the CPU: for sources that cannot flip in hardware. The flipped
    frame is a new array, so ``device_image`` stays None."""

    def __init__(self, source: FrameSource, flip: str) -> None:
        self.source, self.flip = source, flip
        self.name, self.live, self.fps = source.name, source.live, source.fps

    def read(self) -> Optional[np.ndarray]:
        image = self.source.read()
        return None if image is None else flip_image(image, self.flip)

    def close(self) -> None:
        self.source.close()


# ---- opening ------------------------------------------------------------------------------------


def open_source(spec: str, width: int = 640, height: int = 480, fps: float = 15.0, loop: bool = False,
                flip: str = "none") -> FrameSource:
    """The frame source for a camera spec (see module doc); raises CameraUnavailable with the reason.
    Options in a ``csi://`` or ``v4l2://`` URI win over the arguments."""
    parsed = parse_camera_spec(spec)
    width = parsed.options.get("width", width)
    height = parsed.options.get("height", height)
    fps = parsed.options.get("fps", fps)
    flip = parsed.options.get("flip", flip)
    if flip not in FLIPS:
        raise CameraSpecError("camera.flip = {!r}: must be one of {}".format(flip, ", ".join(FLIPS)))
    source, flipped = _open(parsed, width, height, fps, loop, flip)
    return Flipped(source, flip) if flip != "none" and not flipped else source


def _open(spec: CameraSpec, width: int, height: int, fps: float, loop: bool, flip: str) -> Tuple[FrameSource, bool]:
    """The source, and whether it flips the frames itself."""
    if spec.kind in ("index", "v4l2"):
        node = "/dev/video" + spec.location if spec.kind == "index" else spec.location
        _refuse_csi_node(node)
        if spec.kind == "index":
            return OpenCVCamera(int(spec.location), width, height, fps), False
        if not os.path.exists(node):
            raise CameraUnavailable("no such camera device: {} (is it plugged in?)".format(node))
        if jetson_utils_module() is not None:  # older jetson-utils do not flip V4L2: flipped on the CPU
            return JetsonVideoSource("v4l2://" + node, width, height, fps), False
        return OpenCVCamera(node, width, height, fps), False
    if spec.kind == "csi":
        return _open_csi(int(spec.location), width, height, fps, flip), True
    if spec.kind == "stream":
        return _open_stream(spec, width, height, fps, flip)
    return _open_path(spec.location, fps, loop), False


def _refuse_csi_node(node: str) -> None:
    from kiosk.vision.cameras import csi_sensor_of

    csi = csi_sensor_of(node, SYS_ROOT)
    if csi is not None:
        raise CameraUnavailable("{} is a Jetson CSI sensor ({}): V4L2 gives its raw Bayer frames; use camera.source "
                                "= {}".format(node, csi.name or "CSI", csi.spec))


def _open_csi(sensor: int, width: int, height: int, fps: float, flip: str) -> FrameSource:
    """jetson-utils, else OpenCV's GStreamer backend, else the reason neither is here."""
    uri = "csi://{}".format(sensor)
    if jetson_utils_module() is not None:
        return JetsonVideoSource(uri, width, height, fps, flip=flip)
    if opencv_has_gstreamer():
        return GStreamerCamera(csi_pipeline(sensor, width, height, fps, flip), "gstreamer:" + uri, fps)
    raise CameraUnavailable(
        "{} needs jetson-utils or an OpenCV built with GStreamer (JetPack's python3-opencv); neither is here (this "
        "cv2 {} has no GStreamer: a pip wheel?). /dev/videoN is no way round it: V4L2 on a CSI sensor gives raw "
        "Bayer frames".format(uri, cv2.__version__))


def _open_stream(spec: CameraSpec, width: int, height: int, fps: float, flip: str) -> Tuple[FrameSource, bool]:
    """jetson-utils (hardware decoding), else OpenCV's GStreamer with nvv4l2decoder (H.264 RTSP), else OpenCV."""
    url, shown = spec.location, redact(spec.location)
    if spec.scheme in ("rtsp", "rtsps", "rtp") and jetson_utils_module() is not None:
        return JetsonVideoSource(url, width, height, fps, flip=flip), True
    if spec.scheme in ("rtsp", "rtsps") and opencv_has_gstreamer() and gst_element_available("nvv4l2decoder"):
        try:
            return GStreamerCamera(rtsp_pipeline(url, flip), "gstreamer:" + shown, fps), True
        except CameraUnavailable as exc:  # not H.264, say: FFmpeg decodes it on the CPU
            log.warning("%s; trying OpenCV's own backend", exc)
    return OpenCVCamera(url, width, height, fps, name=shown), False


def _open_path(spec: str, fps: float, loop: bool) -> FrameSource:
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
