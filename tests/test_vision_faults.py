"""A fail-safe kiosk's eyes: a wrong or damaged model is refused when it is loaded, with one clear line, and
a detector that fails on every frame gives a ``vision unavailable`` status and a bounded log, never a
traceback per frame. The gate stays closed in both cases.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from kiosk.core.events import FacesSeen, PassCheck, PassPresented
from kiosk.inference import ModelError, load_model
from kiosk.vision.capture import Capture
from kiosk.vision.faces import FaceDetector
from kiosk.vision.mask import MaskClassifier, MaskDetector
from kiosk.vision.sources import ArraySource
from kiosk.vision.worker import VisionWorker

REPO = Path(__file__).resolve().parents[1]
FACE = REPO / "engines" / "face_detector.onnx"
MASK = REPO / "engines" / "mask_classifier_ft.onnx"
needs_engines = pytest.mark.skipif(not (FACE.is_file() and MASK.is_file()), reason="engines/ models missing")


# ------------------------------------------------------------------------------ wrong or damaged model
def _one_line_error(excinfo, path) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and str(path) in text, text
    return text


@needs_engines
def test_the_mask_classifier_as_face_model_is_refused_at_load():
    with pytest.raises(ModelError) as excinfo:
        FaceDetector(str(MASK))
    text = _one_line_error(excinfo, MASK)
    assert "not a face detector" in text and "expected" in text and "cls/obj/bbox/kps_8/16/32" in text
    assert "found 1 input: input [batch,3,64,64]; 1 output: probs [batch,3]" in text
    with pytest.raises(ModelError, match="not a face detector"):
        MaskDetector(str(MASK), str(MASK))


@needs_engines
def test_the_face_detector_as_mask_model_is_refused_at_load():
    with pytest.raises(ModelError) as excinfo:
        MaskClassifier(str(FACE))
    text = _one_line_error(excinfo, FACE)
    assert "not a mask classifier" in text and "[N,3]" in text and "12 outputs: cls_8" in text
    with pytest.raises(ModelError, match="not a mask classifier"):
        MaskDetector(str(FACE), str(FACE))


def _save(tmp_path: Path, name: str, nodes, inputs, outputs) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def value(n, shape):
        return helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)

    graph = helper.make_graph(nodes, name, [value(n, s) for n, s in inputs], [value(n, s) for n, s in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = tmp_path / "{}.onnx".format(name)
    onnx.save(model, str(path))
    return path


def test_tiny_onnx_models_of_the_wrong_kind(tmp_path):
    from onnx import helper

    image = [("input", ["batch", 3, "height", "width"])]
    # passes the image through: neither a face detector nor a classifier
    identity = _save(tmp_path, "identity", [helper.make_node("Identity", ["input"], ["out"])], image,
                     [("out", ["batch", 3, "height", "width"])])
    with pytest.raises(ModelError, match=r"identity\.onnx: not a face detector \(wrong outputs\).*found 1 input"):
        FaceDetector(str(identity))
    with pytest.raises(ModelError, match=r"identity\.onnx: not a mask classifier \(wrong output out\)"):
        MaskClassifier(str(identity))
    # a classifier of the right form (mean colour per channel as the three scores) is accepted as one
    probs = _save(tmp_path, "probs", [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
                                      helper.make_node("Flatten", ["pooled"], ["probs"])],
                  [("input", ["batch", 3, 64, 64])], [("probs", ["batch", 3])])
    assert MaskClassifier(str(probs)).output_name == "probs"
    with pytest.raises(ModelError, match="not a face detector.*the mask classifier"):
        FaceDetector(str(probs))
    # a grey-image network: one channel
    grey = _save(tmp_path, "grey", [helper.make_node("Identity", ["input"], ["probs"])],
                 [("input", ["batch", 1, 64, 64])], [("probs", ["batch", 1, 64, 64])])
    with pytest.raises(ModelError, match=r"not a mask classifier \(wrong input\).*input \[batch,1,64,64\]"):
        MaskClassifier(str(grey))
    # YuNet's outputs (constants here), but five landmark values per anchor instead of ten
    from onnx import numpy_helper

    def yunet_like(name: str, kps: int) -> Path:
        width = {"cls": 1, "obj": 1, "bbox": 4, "kps": kps}
        names = ["{}_{}".format(k, s) for k in width for s in (8, 16, 32)]
        nodes = [helper.make_node("Constant", [], [n], value=numpy_helper.from_array(
            np.zeros((1, 4, width[n.split("_")[0]]), np.float32))) for n in names]
        return _save(tmp_path, name, nodes, image, [(n, [1, "anchors", width[n.split("_")[0]]]) for n in names])

    with pytest.raises(ModelError, match=r"fake_yunet\.onnx: not a face detector \(wrong output kps_8\)"):
        FaceDetector(str(yunet_like("fake_yunet", 5)))
    assert FaceDetector(str(yunet_like("tiny_yunet", 10))).detect_arrays(np.zeros((64, 64, 3), np.uint8))[0].shape == (0, 4)


@needs_engines
def test_damaged_and_garbage_files_are_refused_with_one_line(tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(FACE.read_bytes()[:5000])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(bytes(range(256)) * 40)
    for path in (cut, junk):
        for load in (FaceDetector, MaskClassifier, load_model):
            with pytest.raises(ModelError) as excinfo:
                load(str(path))
            assert "damaged, or not an ONNX model" in _one_line_error(excinfo, path)


@needs_engines
def test_a_wrong_face_model_leaves_the_vision_unavailable_and_the_gate_closed(tmp_path):
    from kiosk.config import Home, load_config, replace, save_config
    from kiosk.demo.run import play, prepare_home, scenarios
    from kiosk.runtime.assemble import assemble

    home = Home(tmp_path / "home")
    tokens = prepare_home(home, None, tmp_path / "speech")
    save_config(replace(load_config(home.config), "vision", face_model=str(MASK), mask_model=str(MASK)), home.config)
    parts = assemble(home)
    try:
        assert parts.detector is None
        vision = [p for p in parts.problems if p.startswith("vision:")]
        assert len(vision) == 1 and "not a face detector" in vision[0] and "gate stays closed" in vision[0]
        granted = next(s for s in scenarios(tokens) if s.name == "granted")
        result = play(parts, granted, keep_frames=False)
        assert not result.gate_opened and parts.gate.pulses == []
    finally:
        parts.close()


# ------------------------------------------------------------------------------ failures on every frame
class _Broken:
    """A detector whose every call fails, as a model that loaded but cannot run would."""

    def __init__(self, good_after: int = -1) -> None:
        self.calls, self.good_after = 0, good_after

    def detect(self, image):
        self.calls += 1
        if self.good_after < 0 or self.calls <= self.good_after:
            raise ModelError("face.onnx", "inference failed: Got invalid dimensions for input")
        return []


class _Codes:
    def read(self, image):
        return ["PASS"]


def _run_worker(detector, frames: int = 300, on_status=None):
    events = []
    capture = Capture(lambda: ArraySource([np.zeros((48, 64, 3), np.uint8)] * frames, fps=1000.0),
                      lossless=True, paced=False)
    worker = VisionWorker(capture, detector, _Codes(), lambda code: PassCheck(False, "bad_signature"),
                          lambda event, t, frame: events.append(event), on_status=on_status)
    capture.start()
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    return worker, events


def test_a_detector_failing_on_every_frame_is_reported_once_and_keeps_the_gate_closed(caplog):
    caplog.set_level(logging.DEBUG, logger="kiosk.vision")
    statuses = []
    worker, events = _run_worker(_Broken(), 300, statuses.append)
    assert worker.failures == 300
    assert worker.status.startswith("unavailable: face/mask detection failed: ModelError: model file face.onnx")
    assert statuses == [worker.status]  # told once
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and "vision unavailable" in errors[0].getMessage() and errors[0].exc_info is None
    assert "Traceback" not in "\n".join(r.getMessage() for r in errors)
    seen = [e for e in events if isinstance(e, FacesSeen)]
    assert len(seen) == 300 and all(e.faces == () for e in seen)  # no face, so no mask: the gate stays closed
    assert sum(isinstance(e, PassPresented) for e in events) == 300  # the pass reader goes on


def test_the_fault_is_logged_again_after_the_interval_with_a_count(caplog, monkeypatch):
    monkeypatch.setattr(VisionWorker, "fault_report_s", 0.0)
    worker, _ = _run_worker(_Broken(), 5)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 5 and all("(1 failed frame)" in line for line in lines)
    clock = [0.0]
    from kiosk.vision.ratelimit import RateLimit

    limit = RateLimit(30.0, clock=lambda: clock[0])
    assert limit.ready() == 0
    assert [limit.ready() for _ in range(3)] == [None] * 3
    clock[0] = 31.0
    assert limit.ready() == 3  # three held back: "4 failed frames in the last 30 s"
    limit.reset()
    assert limit.ready() == 0


def test_the_status_is_ok_again_once_frames_are_processed(monkeypatch):
    monkeypatch.setattr(VisionWorker, "recover_s", 0.0)
    statuses = []
    worker, _ = _run_worker(_Broken(good_after=10), 50, statuses.append)
    assert worker.failures == 10
    assert [s.split(":")[0] for s in statuses] == ["unavailable", "ok"] and worker.status == "ok"


def test_no_detector_is_an_unavailable_status():
    worker, events = _run_worker(None, 3)
    assert worker.status.startswith("unavailable: no face/mask detector") and worker.failures == 0
    assert all(e.faces == () for e in events if isinstance(e, FacesSeen))


# ------------------------------------------------------------------------------ camera source faults
import os  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402

from kiosk.vision.sources import CameraUnavailable, FrameSource, ImageFolder, decode_image, open_source  # noqa: E402


@pytest.fixture
def quick_backoff(monkeypatch):
    """Back-off 0.1 s doubling to 0.4 s, so that a test sees several retries in a second or two."""
    monkeypatch.setattr(Capture, "backoff_first", 0.1)
    monkeypatch.setattr(Capture, "backoff_max", 0.4)


def _frames(folder: Path, n: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / "{:04d}.jpg".format(i)), np.full((48, 64, 3), 40 * i, np.uint8))
    return folder


def _junk(folder: Path) -> Path:
    """Files named .jpg that are no images: random bytes, empty, text, truncated JPEG, a JPEG whose header
    claims 65000 x 65000 pixels (OpenCV raises on it), a folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(10):
        (folder / "random{}.jpg".format(i)).write_bytes(os.urandom(2000 + i))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_bytes(b"not an image\n" * 50)
    good = cv2.imencode(".jpg", np.random.RandomState(0).randint(0, 255, (480, 640, 3), np.uint8))[1].tobytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    huge = bytearray(good)
    at = huge.find(b"\xff\xc0")
    huge[at + 5:at + 9] = struct.pack(">HH", 65000, 65000)
    (folder / "huge.jpg").write_bytes(bytes(huge))
    (folder / "folder.jpg").mkdir()
    return folder


def _capture(folder: Path, loop: bool = True):
    statuses = []
    capture = Capture(lambda: open_source(str(folder), fps=50.0, loop=loop), paced=False,
                      on_status=statuses.append)
    capture.start()
    return capture, statuses


def _wait(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _stop(capture: Capture) -> None:
    capture.stop()
    capture.join(timeout=5)
    assert not capture.is_alive()


def test_junk_files_are_refused_without_opencv_raising(tmp_path):
    folder = _junk(tmp_path / "junk")
    for path in sorted(folder.iterdir()):
        if path.is_file():
            image, why = decode_image(path.read_bytes())
            assert image is None and why, path.name
    assert "too large" in decode_image((folder / "huge.jpg").read_bytes())[1]
    assert decode_image((folder / "truncated.jpg").read_bytes())[1] == "truncated JPEG"
    with pytest.raises(cv2.error):  # what OpenCV's own reader does with it
        cv2.imread(str(folder / "huge.jpg"))


def test_a_folder_of_junk_is_unavailable_with_back_off_and_bounded_logging(tmp_path, quick_backoff, caplog):
    caplog.set_level(logging.INFO, logger="kiosk.vision")
    capture, statuses = _capture(_junk(tmp_path / "camera"))
    time.sleep(1.5)
    assert capture.is_alive() and capture.frames == 0
    assert capture.status.startswith("unavailable: none of the 14 images in") and "can be decoded" in capture.status
    assert statuses == [capture.status]  # told once, not once per retry
    assert 3 <= capture.open_attempts <= 8, capture.open_attempts  # 0.1, 0.2, 0.4, 0.4 … s apart, no spinning
    assert len(caplog.records) <= 2, [r.getMessage() for r in caplog.records]
    _stop(capture)


def test_an_empty_folder_is_unavailable(tmp_path, quick_backoff):
    (tmp_path / "camera").mkdir()
    capture, statuses = _capture(tmp_path / "camera")
    assert _wait(lambda: capture.open_attempts >= 3)
    assert capture.status == "unavailable: no images in {}".format(tmp_path / "camera") and statuses == [capture.status]
    _stop(capture)


def test_a_folder_deleted_mid_run_is_unavailable_and_comes_back(tmp_path, quick_backoff, caplog):
    caplog.set_level(logging.INFO, logger="kiosk.vision")
    folder = _frames(tmp_path / "camera")
    capture, statuses = _capture(folder)
    assert _wait(lambda: capture.frames > 20) and capture.status == "ok"
    shutil.rmtree(str(folder))
    assert _wait(lambda: capture.status.startswith("unavailable"))
    frames = capture.frames
    attempts = capture.open_attempts
    time.sleep(1.5)
    assert capture.is_alive() and capture.frames == frames  # no frame, so never "ok"
    assert capture.status.startswith("unavailable: camera source {} does not exist".format(folder))
    assert 2 <= capture.open_attempts - attempts <= 8
    assert len(caplog.records) <= 3, [r.getMessage() for r in caplog.records]
    assert statuses[0] == "ok" and all(s.startswith("unavailable") for s in statuses[1:]) and len(statuses) <= 3
    _frames(folder)  # the camera is back
    assert _wait(lambda: capture.status == "ok") and capture.frames > frames
    _stop(capture)


def test_a_folder_emptied_without_a_loop_is_unavailable_not_a_silent_end(tmp_path, quick_backoff):
    folder = _frames(tmp_path / "camera", 3)
    source = ImageFolder.from_folder(str(folder))
    for path in folder.iterdir():
        path.unlink()
    with pytest.raises(CameraUnavailable, match=r"none of the 3 images .* can be decoded \(e\.g\. 0002\.jpg: No such file"):
        source.read()


class _Live(FrameSource):
    """A live camera that gives a frame on every read except those ``misses`` says."""

    def __init__(self, misses) -> None:
        self.misses, self.reads, self.name = misses, 0, "fake:0"

    def read(self):
        self.reads += 1
        return None if self.misses(self.reads) else np.zeros((8, 8, 3), np.uint8)


def test_a_single_read_timeout_is_not_a_lost_camera(quick_backoff):
    opened = []

    def open_camera():
        opened.append(_Live(lambda n: n % 3 == 0))  # every third read times out (the Jetson pattern)
        return opened[-1]

    statuses = []
    capture = Capture(open_camera, paced=False, on_status=statuses.append)
    capture.start()
    assert _wait(lambda: capture.frames > 40)  # 20 timeouts
    _stop(capture)
    assert len(opened) == 1 and statuses == ["ok"]


def test_a_live_camera_without_frames_is_reopened_after_lost_after_s(quick_backoff, monkeypatch):
    monkeypatch.setattr(Capture, "lost_after_s", 0.4)
    opened = []

    def open_camera():
        opened.append(_Live(lambda n: n > 3))  # three frames, then nothing
        return opened[-1]

    statuses = []
    capture = Capture(open_camera, paced=False, on_status=statuses.append)
    capture.start()
    assert _wait(lambda: len(opened) >= 3)
    _stop(capture)
    # timeouts in a row (one every miss_wait_s = 0.05 s) are no loss until 0.4 s without a frame
    assert 3 + 5 <= opened[0].reads <= 3 + 0.4 / Capture.miss_wait_s + 2, opened[0].reads
    assert statuses[:2] == ["ok", "unavailable: fake:0 stopped giving frames (none for 0.4 s)"]
