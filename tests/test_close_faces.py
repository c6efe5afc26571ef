"""A face that fills the frame (a resident leaning into the camera) is found, by ``dabai-kiosk detect``'s
detector and by the kiosk's live one: the face detector's coarse second pass (kiosk/vision/faces.py).

The close portraits are built here, nothing is committed: the repository's demo faces (scikit-image's
public-domain astronaut photo with painted masks, ``assets/demo``) and the astronaut photo itself with a
mask painted from its landmarks, zoomed so the face fills 80-100 % of a 1024x1024 frame (tools/close_faces.py
builds them, and measures a larger set from the shared data). Portraits from the shared dataset are read at
test time and skipped when it is absent.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import Config, Home
from kiosk.models.selection import detector_files
from kiosk.runtime.assemble import build_detector
from kiosk.vision.faces import FaceDetector
from kiosk.vision.mask import MaskDetector
from kiosk.vision.tracker import iou_matrix

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DABAI_SHARED", str(REPO.parent / "shared")))
FACE, MASK, CORRECTION = detector_files(Config().vision.face_model, Config().vision.mask_model, str(REPO / "none"))

needs_pair = pytest.mark.skipif(not (os.path.isfile(FACE) and os.path.isfile(MASK)), reason="default detector pair missing")


def _tool():
    spec = importlib.util.spec_from_file_location("close_faces", str(REPO / "tools" / "close_faces.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


close_faces = _tool()


def _reference() -> FaceDetector:
    """The first pass alone, at its ordinary settings: the face's box on the untouched photo."""
    return FaceDetector(FACE, box_correction=CORRECTION)


def _astronaut_portraits(reference: FaceDetector):
    """skimage's astronaut photo as it is and with a mask painted from its landmarks, zoomed in."""
    data = pytest.importorskip("skimage.data")
    from kiosk.train.synthetic_masks import CORRECT, paint_mask

    try:
        photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    except Exception as exc:  # an old scikit-image that fetches its images
        pytest.skip("skimage.data.astronaut() unavailable: {}".format(exc))
    boxes, _, kps = reference.detect_arrays(photo)
    assert len(boxes) == 1
    masked = paint_mask(photo.astype(np.float32), kps[0], tuple(boxes[0]), CORRECT, np.random.RandomState(0))
    out = []
    for label, image in (("without_mask", photo), ("with_mask", masked.astype(np.uint8))):
        for fill in (0.8, 0.9, 1.0):
            frame, box = close_faces.zoom_to_face(image, boxes[0], fill)
            out.append(("astronaut {} @{}".format(label, fill), frame, box, label))
    return out


@pytest.fixture(scope="module")
def portraits():
    reference = _reference()
    demo = [p for p in close_faces.demo_portraits(reference) if p[0].endswith(("@0.80", "@1.00"))]
    assert len(demo) == 12, "assets/demo: six faces at two zooms"
    return demo + _astronaut_portraits(reference)


def _detect_cli() -> MaskDetector:
    """The detector of ``dabai-kiosk detect`` (kiosk.cli.vision.build_detector): the frame at its own size."""
    return MaskDetector(FACE, MASK, "auto", box_correction=CORRECTION)


def _found(detections, box) -> bool:
    if not detections:
        return False
    return float(iou_matrix(np.array([d.box for d in detections], np.float32), box[None]).max()) >= 0.5


def _check(detector, items) -> None:
    for name, frame, box, label in items:
        dets = detector.detect(frame)
        assert dets, "{}: no face".format(name)
        top = dets[0]  # largest first: the person in front of the camera
        assert iou_matrix(np.array([top.box], np.float32), box[None])[0, 0] >= 0.5, "{}: {} vs {}".format(name, top.box, box)
        assert top.mask.value == label, name
        for other in dets[1:]:  # no eye or mouth boxed as a second face
            cx, cy = 0.5 * (other.box[0] + other.box[2]), 0.5 * (other.box[1] + other.box[3])
            assert not (box[0] < cx < box[2] and box[1] < cy < box[3]), "{}: fragment {}".format(name, other.box)


@needs_pair
def test_detect_finds_a_face_that_fills_a_1024_photo(portraits):
    assert all(frame.shape == (1024, 1024, 3) for _, frame, _, _ in portraits)
    _check(_detect_cli(), portraits)


@needs_pair
def test_without_the_second_pass_these_faces_were_missed(portraits):
    det = _detect_cli()
    det.faces.coarse_pass = False
    found = sum(_found(det.detect(frame), box) for _, frame, box, _ in portraits)
    assert found <= len(portraits) // 2, "the portraits no longer show the problem: {}/{}".format(found, len(portraits))


@needs_pair
def test_the_kiosk_live_detector_finds_it_in_photos_and_camera_frames(portraits, tmp_path):
    det = build_detector(Config(), Home(tmp_path))
    assert det.faces.coarse_pass
    _check(det, portraits)
    camera = close_faces.camera_frames(portraits)
    assert camera[0][1].shape == (480, 640, 3)
    _check(det, camera)


class _Counting:
    """Wraps a runner and counts the network's runs."""

    def __init__(self, runner) -> None:
        self.runner, self.runs = runner, 0

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def run(self, feeds):
        self.runs += 1
        return self.runner.run(feeds)


@needs_pair
def test_the_second_pass_runs_only_when_needed(portraits, tmp_path):
    from kiosk.demo.scenes import load_person, lobby, paste

    live = build_detector(Config(), Home(tmp_path))
    counter = _Counting(live.faces.runner)
    live.faces.runner = counter  # type: ignore[assignment]
    # a kiosk camera frame with a face of ordinary size: one run, as before
    frame = lobby(0)
    person = load_person("person1", "with_mask")
    paste(frame, cv2.resize(person, None, fx=0.8, fy=0.8), 200, 120)
    assert live.detect(frame) and counter.runs == 1
    # nothing found: the coarse pass looks once more, then the search pass with the frame at its own size
    counter.runs = 0
    assert live.detect(lobby(1)) == [] and counter.runs == 3
    # dabai-kiosk detect on a big photo: a frame-filling face would be beyond the network there, so both passes run
    cli = _detect_cli()
    cli.faces.runner = counter = _Counting(cli.faces.runner)  # type: ignore[assignment]
    cli.detect(portraits[0][1])
    assert counter.runs == 2
    off = MaskDetector.for_mode(FACE, MASK, "photo", box_correction=CORRECTION)  # evaluation of crowd photos: as before
    off.faces.runner = counter = _Counting(off.faces.runner)  # type: ignore[assignment]
    off.detect(lobby(1))
    assert not off.faces.coarse_pass and counter.runs == 1


class _BlindBelow(_Counting):
    """A runner that sees nothing in inputs narrower than ``width`` (a face the half-size pass misses)."""

    def __init__(self, runner, width: int) -> None:
        super().__init__(runner)
        self.width = width

    def run(self, feeds):
        self.runs += 1
        (name, blob), = feeds.items()
        if blob.shape[3] < self.width:
            blob = np.full_like(blob, 127.0)
        return self.runner.run({name: blob})


@needs_pair
def test_the_search_pass_finds_a_face_the_half_size_pass_missed(tmp_path):
    from kiosk.demo.scenes import load_person, lobby, paste

    live = build_detector(Config(), Home(tmp_path))
    assert live.faces.scale == 0.5 and live.faces.search_scales == (1.0,)
    frame = lobby(0)
    person = load_person("person1", "with_mask")
    paste(frame, cv2.resize(person, None, fx=0.8, fy=0.8), 200, 120)
    expected = live.detect(frame)
    assert len(expected) == 1
    live.faces.runner = blind = _BlindBelow(live.faces.runner, 640)  # type: ignore[assignment]
    found = live.detect(frame)
    assert blind.runs == 3  # half size (blind), coarse (blind), then the frame at its own size
    assert len(found) == 1 and found[0].mask == expected[0].mask
    # in frame pixels, on the same face as the half-size pass would have found
    assert iou_matrix(np.array([found[0].box], np.float32), np.array([expected[0].box], np.float32))[0, 0] > 0.7
    # without the search the face is lost
    live.faces.search_scales = ()
    blind.runs = 0
    assert live.detect(frame) == [] and blind.runs == 2


@pytest.mark.skipif(not (SHARED / "models" / "yunet" / "yunet_n_320_320.onnx").is_file(), reason="shared YuNet not found")
def test_coarse_pass_with_a_fixed_size_network(portraits):
    det = FaceDetector(str(SHARED / "models" / "yunet" / "yunet_n_320_320.onnx"), coarse_pass=True)
    assert det.fixed_size == (320, 320)
    name, frame, box, _ = portraits[1]
    boxes = det.detect_arrays(frame)[0]
    assert len(boxes) and iou_matrix(boxes, box[None]).max() >= 0.4, name  # the learned YuNet correction, not ours


@needs_pair
@pytest.mark.skipif(not (SHARED / "data" / "mask_wearing").is_dir(), reason="shared data not found")
def test_close_portraits_from_the_shared_dataset():
    items = []
    for item in close_faces.dataset_portraits(str(SHARED), _reference()):
        items.append(item)
        if len(items) == 30:
            break
    assert len(items) == 30
    det = _detect_cli()
    found = sum(_found(det.detect(frame), box) for _, frame, box, _ in items)
    assert found >= 27, "{}/30".format(found)
