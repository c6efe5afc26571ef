"""Cameras: camera.source URIs, the GStreamer pipelines, which library opens what, timeouts versus failures in
the capture thread, the zero-copy jetson-utils path, and the cameras present. No Jetson, CSI sensor, jetson-utils
or GStreamer-enabled OpenCV here: those are fakes that behave as their documentation and sources say (jetson-utils
``Capture`` returns None on a timeout and raises on EOS and errors; ``videoSource`` reuses a ring buffer)."""

import dataclasses
import json
import logging
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import CameraConfig, Config
from kiosk.vision import cameras, sources
from kiosk.vision.capture import Capture
from kiosk.vision.sources import (
    CameraSpec,
    CameraSpecError,
    CameraUnavailable,
    Flipped,
    GStreamerCamera,
    JetsonVideoSource,
    OpenCVCamera,
    csi_pipeline,
    open_source,
    parse_camera_spec,
    rtsp_pipeline,
)

LIST_CAMERAS = cameras.list_cameras  # the real one, for tests that point it at a fake tree


# ---- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, location, options, scheme", [
    ("0", "index", "0", {}, ""),
    (" 2 ", "index", "2", {}, ""),
    ("/dev/video1", "v4l2", "/dev/video1", {}, ""),
    ("v4l2:///dev/video1", "v4l2", "/dev/video1", {}, "v4l2"),
    ("v4l2://3", "v4l2", "/dev/video3", {}, "v4l2"),
    ("v4l2:///dev/video0?flip=horizontal", "v4l2", "/dev/video0", {"flip": "horizontal"}, "v4l2"),
    ("csi://0", "csi", "0", {}, "csi"),
    ("CSI://1?width=1280&height=720&fps=30&flip=rotate-180", "csi", "1",
     {"width": 1280, "height": 720, "fps": 30.0, "flip": "rotate-180"}, "csi"),
    ("rtsp://admin:secret@192.168.1.64:554/Streaming/Channels/101?transport=tcp", "stream",
     "rtsp://admin:secret@192.168.1.64:554/Streaming/Channels/101?transport=tcp", {}, "rtsp"),
    ("http://cam.local/video.mjpg", "stream", "http://cam.local/video.mjpg", {}, "http"),
    ("rtp://@:5000", "stream", "rtp://@:5000", {}, "rtp"),
    ("file:///srv/clips/door.mp4", "file", "/srv/clips/door.mp4", {}, "file"),
    ("file://clips/", "file", "clips/", {}, "file"),
    ("/home/kiosk/frames", "file", "/home/kiosk/frames", {}, ""),
    ("frames", "file", "frames", {}, ""),
])
def test_camera_sources_parse(text, kind, location, options, scheme):
    assert parse_camera_spec(text) == CameraSpec(kind, location, options, scheme)


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("foo://bar", r"unknown scheme foo:// \(known: csi://, v4l2://"),
    ("csi://", "csi:// takes a sensor number, e.g. csi://0"),
    ("csi://front", "csi:// takes a sensor number"),
    ("csi://0?zoom=2", "unknown option 'zoom' .known: width, height, fps, flip"),
    ("csi://0?width=wide", "width='wide' must be a whole number"),
    ("csi://0?width=99999", "width='99999' must be between 160 and 4096"),
    ("csi://0?fps=nan", "fps='nan' must be between 1.0 and 120.0"),
    ("csi://0?flip=sideways", "flip='sideways' must be one of none, rotate-180, horizontal"),
    ("v4l2://dev/video0", r"v4l2:// takes a device path, e.g. v4l2:///dev/video0 \(three slashes\)"),
    ("file://", "file:// needs a path"),
    ("rtsp:///stream1", "needs a host"),
    ('rtsp://cam/a" ! filesink location="/tmp/x', "must not hold quotes"),
    ("rtsp://cam/a b", "must not hold quotes, backslashes or spaces"),
])
def test_bad_camera_sources_are_refused_with_the_reason(text, words):
    with pytest.raises(CameraSpecError, match=words):
        parse_camera_spec(text)


def test_a_password_in_a_url_is_never_shown():
    with pytest.raises(CameraSpecError) as caught:
        parse_camera_spec("rtsp://admin:hunter2@cam/a b")
    assert "hunter2" not in str(caught.value) and "admin:***@cam" in str(caught.value)
    assert sources.redact("rtsp://u:p@h/x and rtsp://h/y") == "rtsp://u:***@h/x and rtsp://h/y"


def test_flip_choices_are_the_same_in_the_config_and_the_sources():
    field = {f.name: f for f in dataclasses.fields(CameraConfig)}["flip"]
    assert tuple(field.metadata["choices"]) == sources.FLIPS and field.default == "none"
    assert set(sources.NVVIDCONV_FLIP) == set(sources.FLIPS) == set(sources.JETSON_FLIP)


# ---- pipelines ----------------------------------------------------------------------------------


def test_the_csi_pipeline_string():
    assert csi_pipeline(1, 1280, 720, 30.0, "rotate-180") == (
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! "
        "nvvidconv flip-method=2 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1 sync=false")
    assert "framerate=15/2 " in csi_pipeline(0, 640, 480, 7.5)
    methods = {flip: csi_pipeline(0, 640, 480, 15.0, flip).split("flip-method=")[1].split()[0] for flip in sources.FLIPS}
    assert methods == {"none": "0", "counterclockwise": "1", "rotate-180": "2", "clockwise": "3", "horizontal": "4",
                       "vertical": "6"}  # nvvidconv's GstNvVideoFlipMethod


def test_the_rtsp_pipeline_string():
    assert rtsp_pipeline("rtsp://u:p@cam:554/live", "clockwise") == (
        'rtspsrc location="rtsp://u:p@cam:554/live" latency=200 ! rtph264depay ! h264parse ! nvv4l2decoder ! '
        "nvvidconv flip-method=3 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1 sync=false")


def test_opencv_gstreamer_is_read_from_the_build_information(monkeypatch):
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n    GStreamer:                   YES (1.16.3)\n")
    assert sources.opencv_has_gstreamer()
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n    GStreamer:                   NO\n")
    assert not sources.opencv_has_gstreamer()


def test_this_machines_opencv_has_no_gstreamer():
    """What the README says: pip's cv2 here has no GStreamer, so csi:// is refused with the reason."""
    assert not sources.opencv_has_gstreamer()


# ---- a fake jetson-utils ------------------------------------------------------------------------


class FakeCudaImage:
    """jetson-utils' cudaImage: width, height, format, ptr; its pixels live in ``array`` (mapped memory)."""

    def __init__(self, width, height, format, array=None):
        self.width, self.height, self.format = width, height, format
        self.array = np.zeros((height, width, 3), np.uint8) if array is None else array
        self.ptr = self.array.ctypes.data
        self.mapped = True


def fake_jetson_utils(script=(), streaming=True, size=(64, 48)):
    """A jetson_utils module. ``script`` says what each Capture call does: "timeout" (None), "raise", or a frame
    (an int: the frame's fill value); after the script, frames keep coming. ``videoSource`` writes each frame into
    one of two ring buffers, as the real one reuses its buffers. Like jetson-utils, it keeps no reference to the
    images it hands out: it records their ``ptr`` only."""
    ju = types.ModuleType("jetson_utils")
    ju.opened, ju.allocated, ju.converted, ju.synced = [], [], [], [0]

    class videoSource:
        def __init__(self, uri, argv=()):
            self.uri, self.argv, self.calls, self.closed = uri, list(argv), 0, False
            self.ring = [FakeCudaImage(size[0], size[1], "rgb8") for _ in range(2)]
            self.streaming = streaming
            ju.opened.append(self)

        def Capture(self, format="rgb8", timeout=-1):
            assert format == "rgb8" and timeout == JetsonVideoSource.timeout_ms
            step = script[self.calls] if self.calls < len(script) else 100 + self.calls
            self.calls += 1
            if step == "timeout":
                return None
            if step == "raise":
                raise Exception("jetson.utils -- videoSource failed to capture image")
            image = self.ring[self.calls % 2]
            image.array[:] = (step % 256, (step + 1) % 256, (step + 2) % 256)  # R, G, B
            return image

        def IsStreaming(self):
            return self.streaming

        def Close(self):
            self.closed = True

    def cudaAllocMapped(width, height, format):
        image = FakeCudaImage(width, height, format)
        ju.allocated.append(image.ptr)
        return image

    def cudaConvertColor(input, output):
        assert (input.format, output.format) == ("rgb8", "bgr8")
        assert (input.width, input.height) == (output.width, output.height)
        output.array[:] = input.array[:, :, ::-1]
        ju.converted.append((input.ptr, output.ptr))

    def cudaDeviceSynchronize():
        ju.synced[0] += 1

    ju.videoSource, ju.cudaAllocMapped, ju.cudaConvertColor = videoSource, cudaAllocMapped, cudaConvertColor
    ju.cudaToNumpy = lambda image: image.array  # a view of the same memory, no copy
    ju.cudaDeviceSynchronize = cudaDeviceSynchronize
    return ju


@pytest.fixture
def no_cpu_colour(monkeypatch):
    """Fails a test that converts colours with OpenCV on the CPU."""
    def refuse(*args, **kwargs):
        raise AssertionError("cv2.cvtColor was called: the colour conversion must be on the GPU")

    monkeypatch.setattr(cv2, "cvtColor", refuse)


def install(monkeypatch, ju):
    monkeypatch.setitem(sys.modules, "jetson_utils", ju)
    return ju


@pytest.fixture
def no_jetson(monkeypatch):
    monkeypatch.setattr(sources, "jetson_utils_module", lambda: None)


class FakeVideoCapture:
    """cv2.VideoCapture, recording what it was asked to open; ``opens`` says whether it does."""

    made = []

    def __init__(self, what, api=None, opens=True):
        self.what, self.api, self.opens = what, api, opens
        FakeVideoCapture.made.append(self)

    def isOpened(self):
        return self.opens and "fail" not in str(self.what)

    def set(self, *args):
        return True

    def read(self):
        return True, np.full((48, 64, 3), 7, np.uint8)

    def release(self):
        pass


@pytest.fixture
def fake_capture(monkeypatch):
    FakeVideoCapture.made = []
    monkeypatch.setattr(cv2, "VideoCapture", FakeVideoCapture)
    return FakeVideoCapture.made


# ---- which library opens what --------------------------------------------------------------------


def test_csi_goes_to_jetson_utils_first_with_its_flip_and_size(monkeypatch, fake_capture):
    ju = install(monkeypatch, fake_jetson_utils())
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: True)  # jetson-utils still comes first
    source = open_source("csi://1?width=1280&height=720", 640, 480, 30.0, flip="rotate-180")
    assert isinstance(source, JetsonVideoSource) and not fake_capture
    assert ju.opened[0].uri == "csi://1"
    assert ju.opened[0].argv == ["--input-width=1280", "--input-height=720", "--input-rate=30.0",
                                 "--input-flip=rotate-180"]


def test_csi_without_jetson_utils_goes_to_opencv_gstreamer(monkeypatch, no_jetson, fake_capture):
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: True)
    source = open_source("csi://0", 1280, 720, 30.0, flip="vertical")
    assert isinstance(source, GStreamerCamera)  # flipped by nvvidconv, not wrapped
    assert fake_capture[0].what == csi_pipeline(0, 1280, 720, 30.0, "vertical")
    assert fake_capture[0].api == cv2.CAP_GSTREAMER
    assert source.read().shape == (48, 64, 3)


def test_csi_with_neither_is_refused_with_the_reason(monkeypatch, no_jetson, fake_capture):
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: False)
    with pytest.raises(CameraUnavailable, match="needs jetson-utils or an OpenCV built with GStreamer") as caught:
        open_source("csi://0")
    assert "raw Bayer" in str(caught.value) and not fake_capture


def test_rtsp_goes_to_jetson_utils_then_the_hardware_decoder_then_ffmpeg(monkeypatch, fake_capture, caplog):
    url = "rtsp://admin:secret@cam:554/live"
    ju = install(monkeypatch, fake_jetson_utils())
    source = open_source(url, flip="clockwise")
    assert isinstance(source, JetsonVideoSource) and ju.opened[0].uri == url
    assert "--input-flip=clockwise" in ju.opened[0].argv and "--input-rtsp-latency=200" in ju.opened[0].argv
    assert "secret" not in source.name

    monkeypatch.setattr(sources, "jetson_utils_module", lambda: None)
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: True)
    monkeypatch.setattr(sources, "gst_element_available", lambda name: name == "nvv4l2decoder")
    source = open_source(url, flip="clockwise")
    assert isinstance(source, GStreamerCamera) and fake_capture[-1].what == rtsp_pipeline(url, "clockwise")

    monkeypatch.setattr(sources, "gst_element_available", lambda name: False)  # no hardware decoder
    source = open_source(url, flip="clockwise")
    assert isinstance(source, Flipped) and isinstance(source.source, OpenCVCamera)
    assert fake_capture[-1].what == url and fake_capture[-1].api is None  # OpenCV picks FFmpeg itself
    assert source.read().shape == (64, 48, 3)  # turned on the CPU

    monkeypatch.setattr(sources, "gst_element_available", lambda name: True)
    monkeypatch.setattr(sources, "rtsp_pipeline", lambda url, flip: "fail: not H.264")
    with caplog.at_level(logging.WARNING, logger="kiosk.vision.sources"):
        source = open_source(url)
    assert isinstance(source, OpenCVCamera) and "trying OpenCV's own backend" in caplog.text
    assert "secret" not in caplog.text


def test_v4l2_goes_to_jetson_utils_and_flips_on_the_cpu(monkeypatch, no_cpu_colour):
    ju = install(monkeypatch, fake_jetson_utils())
    source = open_source("v4l2:///dev/null", flip="horizontal")  # any device node that exists
    assert isinstance(source, Flipped) and isinstance(source.source, JetsonVideoSource)
    assert ju.opened[0].uri == "v4l2:///dev/null" and not any("flip" in a for a in ju.opened[0].argv)
    frame = source.read()
    assert frame is not None and source.device_image is None  # a CPU copy is no view of the CUDA image


def test_a_missing_v4l2_device_is_refused(monkeypatch):
    install(monkeypatch, fake_jetson_utils())
    with pytest.raises(CameraUnavailable, match="no such camera device: /dev/video97"):
        open_source("v4l2:///dev/video97")


def test_files_and_folders_keep_working_and_flip_on_the_cpu(tmp_path):
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :10] = 255  # a white left edge
    path = tmp_path / "door.png"
    cv2.imwrite(str(path), image)
    for spec in (str(path), "file://" + str(path)):
        source = open_source(spec, flip="horizontal")
        frame = source.read()
        assert isinstance(source, Flipped) and frame.shape == (40, 60, 3) and frame[:, -10:].min() == 255
    frame = open_source(str(tmp_path), flip="clockwise").read()  # a folder
    assert frame.shape == (60, 40, 3) and frame[:10].min() == 255  # the left edge is on top now
    assert open_source("file://" + str(tmp_path)).read().shape == (40, 60, 3)
    with pytest.raises(CameraUnavailable, match="does not exist"):
        open_source("file://" + str(tmp_path / "gone.mp4"))


# ---- timeouts are not a lost camera --------------------------------------------------------------


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(Capture, "backoff_first", 0.1)
    monkeypatch.setattr(Capture, "backoff_max", 0.2)
    monkeypatch.setattr(Capture, "first_frame_grace_s", 1.5)
    monkeypatch.setattr(Capture, "lost_after_s", 0.3)


def _wait(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _run(ju, spec="csi://0"):
    statuses = []
    capture = Capture(lambda: open_source(spec), paced=False, on_status=statuses.append)
    capture.start()
    return capture, statuses


def _stop(capture):
    capture.stop()
    capture.join(timeout=5)
    assert not capture.is_alive()


def test_slow_first_frames_are_waited_for(monkeypatch, quick):
    # 16 timeouts, 0.05 s apart: 0.8 s without a frame, longer than lost_after_s but within the first-frame grace
    ju = install(monkeypatch, fake_jetson_utils(["timeout"] * 16))
    capture, statuses = _run(ju)
    assert _wait(lambda: capture.frames >= 5)
    _stop(capture)
    assert len(ju.opened) == 1 and statuses == ["ok"]


def test_timeouts_in_a_row_after_frames_are_no_loss_until_lost_after_s(monkeypatch, quick):
    ju = install(monkeypatch, fake_jetson_utils([1, 2, 3] + ["timeout"] * 4 + [4, 5] + ["timeout"] * 40))
    capture, statuses = _run(ju)
    assert _wait(lambda: len(ju.opened) >= 2)
    _stop(capture)
    first = ju.opened[0]
    assert first.closed and first.calls >= 3 + 4 + 2 + 5  # the 4 timeouts (0.2 s) did not lose it; 0.3 s did
    assert statuses[:2] == ["ok", "unavailable: jetson:csi://0 stopped giving frames (none for 0.3 s)"]


def test_a_camera_that_never_gives_a_frame_is_lost_after_the_grace(monkeypatch, quick):
    monkeypatch.setattr(Capture, "first_frame_grace_s", 0.4)
    ju = install(monkeypatch, fake_jetson_utils(["timeout"] * 1000))
    started = time.monotonic()
    capture, statuses = _run(ju)
    assert _wait(lambda: capture.status.startswith("unavailable"))
    took = time.monotonic() - started
    _stop(capture)
    assert 0.4 <= took < 2.0 and capture.frames == 0
    assert statuses == ["unavailable: jetson:csi://0 gave no frame in the 0.4 s after it was opened"]


def test_a_capture_failure_of_a_stopped_stream_is_a_lost_camera_at_once(monkeypatch, quick):
    monkeypatch.setattr(Capture, "lost_after_s", 30.0)  # so only the failure can end it
    ju = install(monkeypatch, fake_jetson_utils([1, 2, "raise"], streaming=False))  # the end of the stream
    started = time.monotonic()
    capture, statuses = _run(ju)
    assert _wait(lambda: len(ju.opened) >= 2, timeout=3.0)
    assert time.monotonic() - started < 2.0 and ju.opened[0].closed
    _stop(capture)
    assert statuses[:2] == ["ok", "unavailable: jetson:csi://0 stopped: jetson.utils -- videoSource failed to "
                                  "capture image"]
    assert statuses[2] == "ok"  # reopened, and frames again


def test_a_capture_exception_while_still_streaming_counts_as_a_timeout(monkeypatch, quick):
    ju = install(monkeypatch, fake_jetson_utils([1, "raise", "raise", 2, 3]))  # older jetson-utils raise on timeout
    capture, statuses = _run(ju)
    assert _wait(lambda: capture.frames >= 6)
    _stop(capture)
    assert len(ju.opened) == 1 and statuses == ["ok"]


def test_an_unplugged_opencv_camera_fails_rather_than_times_out(tmp_path, monkeypatch, fake_capture):
    node = tmp_path / "dev" / "video5"
    node.parent.mkdir()
    node.write_bytes(b"")
    camera = OpenCVCamera(str(node))
    camera.node = str(node)  # the fake tree stands in for /dev
    monkeypatch.setattr(FakeVideoCapture, "read", lambda self: (False, None))
    assert camera.read() is None  # a timeout while the node is there
    node.unlink()
    with pytest.raises(CameraUnavailable, match="video5 was unplugged"):
        camera.read()


# ---- zero copy -------------------------------------------------------------------------------------


def test_jetson_frames_are_converted_on_the_gpu_into_views_of_the_device_image(monkeypatch, no_cpu_colour):
    ju = install(monkeypatch, fake_jetson_utils([10]))
    source = open_source("csi://0")
    frame = source.read()
    device = source.device_image
    rgb = next(image for image in ju.opened[0].ring if image.ptr == ju.converted[-1][0])
    assert device.format == "bgr8" and ju.converted[-1][1] == device.ptr and ju.synced[0] == 1
    assert frame.ctypes.data == device.ptr and np.shares_memory(frame, device.array)  # the same memory, no copy
    assert tuple(frame[0, 0]) == (12, 11, 10) and tuple(rgb.array[0, 0]) == (10, 11, 12)  # BGR from RGB


def test_frames_a_consumer_holds_are_never_overwritten(monkeypatch, no_cpu_colour, caplog):
    ju = install(monkeypatch, fake_jetson_utils([1, 2, 3]))
    source = open_source("csi://0")
    held = []
    for _ in range(3):  # the vision worker, the screen and the capture thread each hold one
        held.append((source.read(), source.device_image))
    assert len({d.ptr for _, d in held}) == 3 and len(ju.allocated) == 3
    assert [int(f[0, 0, 2]) for f, _ in held] == [1, 2, 3]  # red channel: unchanged, though the ring was reused
    source.read()
    assert [int(f[0, 0, 2]) for f, _ in held] == [1, 2, 3]

    held.clear()  # let them go: the pool's images are used again, none allocated
    before = len(ju.allocated)
    ptrs = set()
    for _ in range(6):
        source.read()
        ptrs.add(source.device_image.ptr)
    assert len(ju.allocated) == before and ptrs <= set(ju.allocated)

    keep = []
    with caplog.at_level(logging.WARNING, logger="kiosk.vision.sources"):
        for _ in range(JetsonVideoSource.pool_max + 2):  # a consumer that never lets go
            keep.append(source.read())
    assert len(ju.allocated) == JetsonVideoSource.pool_max and "still held; reusing the oldest" in caplog.text


def test_the_capture_thread_hands_the_device_image_with_the_frame(monkeypatch, no_cpu_colour, quick):
    install(monkeypatch, fake_jetson_utils())
    capture = Capture(lambda: open_source("csi://0"), paced=False)
    capture.start()
    frame = capture.get(timeout=5.0)
    _stop(capture)
    assert frame is not None and frame.device is not None and frame.device.format == "bgr8"
    assert np.shares_memory(frame.image, frame.device.array) and frame.image.ctypes.data == frame.device.ptr


def test_other_sources_give_no_device_image():
    capture = Capture(lambda: sources.ArraySource([np.zeros((8, 8, 3), np.uint8)] * 2), paced=False)
    capture.start()
    frame = capture.get(timeout=5.0)
    _stop(capture)
    assert frame is not None and frame.device is None


# ---- the cameras present -------------------------------------------------------------------------------


def fake_tree(root: Path) -> Path:
    """Two CSI sensors (one known by its driver link only), a USB camera with its metadata node, and a /dev node
    that sysfs does not list."""
    nodes = {
        "video0": {"name": "vi-output, imx219 9-0010"},
        "video1": {"name": "imx477 10-001a", "driver": "tegra-capture-vi"},
        "video2": {"name": "HD USB Camera: HD USB Camera", "index": "0"},
        "video3": {"name": "HD USB Camera: HD USB Camera", "index": "1"},
        "video10": {"name": "Dummy video device (0x0000)"},
    }
    for node, attrs in nodes.items():
        folder = root / "sys/class/video4linux" / node
        folder.mkdir(parents=True)
        (folder / "name").write_text(attrs["name"] + "\n")
        if "index" in attrs:
            (folder / "index").write_text(attrs["index"] + "\n")
        if "driver" in attrs:
            driver = root / "sys/bus/platform/drivers" / attrs["driver"]
            driver.mkdir(parents=True)
            (folder / "device").mkdir()
            (folder / "device" / "driver").symlink_to(driver)
        (root / "dev").mkdir(exist_ok=True)
        (root / "dev" / node).write_bytes(b"")
    (root / "dev" / "video11").write_bytes(b"")
    return root


def test_the_cameras_present_are_listed_from_sysfs(tmp_path):
    found = cameras.list_cameras(str(fake_tree(tmp_path)))
    assert [(c.spec, c.name, c.node, c.kind) for c in found] == [
        ("csi://0", "imx219", "/dev/video0", "csi"),
        ("csi://1", "imx477", "/dev/video1", "csi"),
        ("/dev/video2", "HD USB Camera: HD USB Camera", "/dev/video2", "v4l2"),
        ("/dev/video10", "Dummy video device (0x0000)", "/dev/video10", "v4l2"),
        ("/dev/video11", "", "/dev/video11", "v4l2"),
        ("/dev/video3", "HD USB Camera: HD USB Camera", "/dev/video3", "v4l2"),
    ]
    assert "raw Bayer" in found[0].note and "metadata" in found[-1].note
    assert found[0].label == "csi://0  ·  imx219  ·  CSI sensor on /dev/video0 (V4L2 there gives raw Bayer)"
    assert cameras.list_cameras(str(tmp_path / "nothing")) == []


def test_a_csi_node_opened_through_v4l2_is_refused_with_its_csi_uri(tmp_path, monkeypatch, fake_capture):
    monkeypatch.setattr(sources, "SYS_ROOT", str(fake_tree(tmp_path)))
    assert cameras.csi_sensor_of("1", str(tmp_path)).spec == "csi://1"
    assert cameras.csi_sensor_of("/dev/video2", str(tmp_path)) is None
    for spec in ("0", "/dev/video0", "v4l2:///dev/video0"):
        with pytest.raises(CameraUnavailable, match=r"/dev/video0 is a Jetson CSI sensor \(imx219\): V4L2 gives its "
                                                    r"raw Bayer frames; use camera.source = csi://0"):
            open_source(spec)
    assert not fake_capture


def test_the_devices_page_checks_and_offers_the_cameras(tmp_path, monkeypatch, no_jetson):
    from kiosk.ui.operator import devices

    monkeypatch.setattr(cameras, "list_cameras", lambda root="/": LIST_CAMERAS(str(tmp_path)))
    fake_tree(tmp_path)
    found = devices.probe_devices()
    assert found["cameras"][:3] == ["csi://0", "csi://1", "/dev/video2"]
    assert found["camera_labels"]["csi://0"].startswith("csi://0  ·  imx219")
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: False)
    assert "need jetson-utils or JetPack's OpenCV with GStreamer" in devices.camera_problem("csi://0")
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: True)
    assert devices.camera_problem("csi://0") is None
    assert "unknown scheme foo://" in devices.camera_problem("foo://x")
    assert "no such device: /dev/video98" in devices.camera_problem("v4l2:///dev/video98")
    assert devices.camera_problem("rtsp://cam/live") is None  # not dialled


# ---- doctor and the command line -------------------------------------------------------------------------


def test_doctor_waits_for_a_slow_first_frame_and_names_the_cameras_present(monkeypatch, no_jetson):
    from kiosk.runtime import doctor

    config = Config()
    config = dataclasses.replace(config, camera=dataclasses.replace(config.camera, source="csi://0"))
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: False)
    monkeypatch.setattr(cameras, "list_cameras", lambda root="/": [
        cameras.FoundCamera("csi://0", "imx219", "/dev/video0", "csi"),
        cameras.FoundCamera("/dev/video2", "HD USB Camera", "/dev/video2", "v4l2")])
    name, ok, detail = doctor._camera(config)
    assert not ok and "needs jetson-utils" in detail
    assert detail.endswith("cameras present: csi://0  ·  imx219; /dev/video2  ·  HD USB Camera")

    class Slow(sources.FrameSource):
        reads = 0

        def read(self):
            Slow.reads += 1
            return None if Slow.reads < 4 else np.zeros((720, 1280, 3), np.uint8)

    monkeypatch.setattr(sources, "open_source", lambda *a, **k: Slow())
    assert doctor._camera(config) == ("camera", True, "csi://0: 1280x720")


def test_the_cameras_command(monkeypatch, capsys, tmp_path):
    from kiosk.cli import main

    monkeypatch.setattr(cameras, "list_cameras", lambda root="/": LIST_CAMERAS(str(tmp_path)))
    fake_tree(tmp_path)
    assert main(["--home", str(tmp_path / "home"), "cameras", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cameras"][0] == {"spec": "csi://0", "name": "imx219", "node": "/dev/video0", "kind": "csi",
                                 "note": "CSI sensor on /dev/video0 (V4L2 there gives raw Bayer)"}
    assert out["configured"] == "0" and out["csi"]["opencv_gstreamer"] is False
    assert main(["--home", str(tmp_path / "home"), "cameras"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("csi://0  ·  imx219") and "through OpenCV with GStreamer: no" in text


def test_the_devices_page_offers_the_cameras_present_and_saves_a_flip(qtbot, home, tmp_path, monkeypatch):
    pytest.importorskip("PyQt5.QtWidgets")
    from kiosk.config import load_config
    from kiosk.ui.operator import OperatorScreen

    root = str(fake_tree(tmp_path / "root"))
    monkeypatch.setattr(cameras, "list_cameras", lambda root_="/": LIST_CAMERAS(root))
    screen = OperatorScreen(home, lambda: {})
    qtbot.addWidget(screen)
    try:
        page = screen.show_page("devices")
        qtbot.waitUntil(lambda: bool(page.found), timeout=10000)
        combo = page.pick_camera
        assert combo.itemText(0).startswith("csi://0  ·  imx219") and combo.itemData(0) == "csi://0"
        combo.activated[int].emit(2)  # the operator picks the USB camera: its spec goes in the form, not the label
        assert page.camera.text("source") == "/dev/video2"
        page.camera.set_value("source", str(Path(__file__).resolve().parents[1] / "assets/demo/person1_with_mask.png"))
        page.camera.set_value("flip", "rotate-180")
        assert page.save() and load_config(home.config).camera.flip == "rotate-180"
    finally:
        screen.close_screen()
