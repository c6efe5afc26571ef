"""Face detector, mask classifier, model runner and model installer.

Data-dependent tests read the dataset and YuNet from the shared folder
(``$DABAI_SHARED``, default ``<repo>/../shared``) and skip with a reason when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from kiosk.core.events import Mask
from kiosk.inference import ModelError, load_model
from kiosk.models import ModelInstallError, ModelNotInstalled, fetch, model_path, verify
from kiosk.vision.faces import FaceDetector
from kiosk.vision.image import to_bgr
from kiosk.vision.mask import CLASSES, MaskClassifier, MaskDetector, crop_boxes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("DABAI_SHARED", os.path.join(REPO, "..", "shared"))
DATA = os.path.join(SHARED, "data", "facemask")
YUNET_DIR = os.path.join(SHARED, "models", "yunet")
YUNET = os.path.join(YUNET_DIR, "yunet_n_dynamic.onnx")
MASK_ONNX = os.path.join(REPO, "engines", "mask_classifier.onnx")
SPLITS = os.path.join(REPO, "engines", "splits")

needs_shared = pytest.mark.skipif(
    not (os.path.isdir(DATA) and os.path.isfile(YUNET)),
    reason="shared data/models not found at {} (set DABAI_SHARED)".format(SHARED),
)
needs_mask = pytest.mark.skipif(not os.path.isfile(MASK_ONNX), reason="engines/mask_classifier.onnx not trained yet")


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(YUNET)


@pytest.fixture(scope="module")
def test_split():
    from kiosk.train.data import load_dataset, read_splits

    by = {a.image: a for a in load_dataset(DATA)}
    return [by[n] for n in read_splits(SPLITS)["test"]]


def _img(name):
    return cv2.imread(os.path.join(DATA, "images", name), cv2.IMREAD_COLOR)


# ------------------------------------------------------------------------------ face detector
@needs_shared
def test_detector_finds_gt_faces(detector, test_split):
    from kiosk.train.data import iou_matrix

    # the first 30 test images with a GT face >= 48 px: those faces must be found at IoU >= 0.5
    hit = tot = n_img = 0
    for a in test_split:
        big = a.boxes[(a.boxes[:, 3] - a.boxes[:, 1]) >= 48]
        if not len(big) or n_img >= 30:
            continue
        n_img += 1
        faces = detector.detect(_img(a.image))
        for f in faces:
            assert all(isinstance(v, int) for v in f.box) and len(f.landmarks) == 5
            assert 0 <= f.box[0] < f.box[2] and 0 <= f.box[1] < f.box[3]
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        iou = iou_matrix(big, boxes)
        hit += int((iou.max(1) >= 0.5).sum()) if len(boxes) else 0
        tot += len(big)
    assert tot >= 35
    assert hit / tot >= 0.9, "recall@0.5 on test faces >= 48 px: {}/{}".format(hit, tot)


@needs_shared
def test_box_correction_improves_iou(test_split):
    from kiosk.train.data import iou_matrix

    raw = FaceDetector(YUNET, box_correction=(0, 0, 0, 0))
    corr = FaceDetector(YUNET)
    ious_raw, ious_corr = [], []
    for a in test_split[:12]:
        img = _img(a.image)
        for det, acc in ((raw, ious_raw), (corr, ious_corr)):
            b, _, _ = det.detect_arrays(img)
            if len(b) and len(a.boxes):
                acc += iou_matrix(a.boxes, b).max(1).tolist()
    assert np.mean(ious_corr) > np.mean(ious_raw) + 0.02


@needs_shared
def test_decode_matches_opencv_facedetectoryn():
    img = _img("maksssksksss0.png")
    path = os.path.join(YUNET_DIR, "yunet_s_dynamic.onnx")
    ours = FaceDetector(path, score_threshold=0.6, min_long_side=0, box_correction=(0, 0, 0, 0))
    boxes, scores, kps = ours.detect_arrays(img)
    ref = cv2.FaceDetectorYN.create(path, "", (img.shape[1], img.shape[0]), 0.6, 0.3, 5000)
    _, faces = ref.detect(img)
    assert faces is not None and len(faces) == len(boxes) >= 3
    faces = faces[np.argsort(-faces[:, -1])]
    np.testing.assert_allclose(boxes[:, :2], faces[:, :2], atol=0.05)
    np.testing.assert_allclose(boxes[:, 2:] - boxes[:, :2], faces[:, 2:4], atol=0.05)
    np.testing.assert_allclose(kps.reshape(-1, 10), faces[:, 4:14], atol=0.05)
    np.testing.assert_allclose(scores, faces[:, 14], atol=1e-4)


@needs_shared
def test_grey_bgra_empty_tiny_frames(detector):
    img = _img("maksssksksss0.png")
    n = len(detector.detect(img))
    assert n >= 3
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(grey)) >= 2
    assert len(detector.detect(grey[:, :, None])) >= 2
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    assert [f.box for f in detector.detect(bgra)] == [f.box for f in detector.detect(img)]
    assert detector.detect(np.zeros((0, 0, 3), np.uint8)) == []
    assert detector.detect(None) == []
    assert detector.detect(np.zeros((5, 7, 3), np.uint8)) == []
    assert detector.detect(np.full((1, 1), 128, np.uint8)) == []
    assert to_bgr(np.zeros((4, 4, 2), np.uint8)) is None


# --------------------------------------------------------------------------------- classifier
def test_crop_boxes_matches_resize_and_is_vectorized():
    rng = np.random.RandomState(0)
    img = rng.randint(0, 255, (40, 30, 3)).astype(np.uint8)
    # whole image, no margin, upsampling: the same as cv2 bilinear resize (pixel-centre convention)
    out = crop_boxes(img, np.array([[0, 0, 30, 40]]), size=64, margin=0.0)[0]
    ref = cv2.resize(img, (64, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    assert np.abs(out - ref)[2:-2, 2:-2].max() < 1.5
    # several boxes in one call == one call per box; outside pixels repeat the border
    boxes = np.array([[-10, -10, 20, 20], [5, 5, 25, 35], [0, 0, 300, 400]], np.float32)
    many = crop_boxes(img, boxes, size=32)
    for i in range(len(boxes)):
        np.testing.assert_allclose(many[i], crop_boxes(img, boxes[i : i + 1], size=32)[0], atol=1e-3)
    assert crop_boxes(img, np.zeros((0, 4)), 32).shape == (0, 32, 32, 3)


@needs_shared
@needs_mask
def test_classifier_on_gt_crops_of_each_class(test_split):
    # every GT face of the held-out test split (535 crops; 19 of the rare incorrect class)
    clf = MaskClassifier(MASK_ONNX)
    ys, ps, hs = [], [], []
    for a in test_split:
        if not len(a.boxes):
            continue
        p = clf.classify_boxes(_img(a.image), a.boxes)
        assert p.shape == (len(a.boxes), 3)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-4)
        ys += a.labels.tolist()
        ps += p.argmax(1).tolist()
        hs += (a.boxes[:, 3] - a.boxes[:, 1]).tolist()
    ys, ps, hs = np.array(ys), np.array(ps), np.array(hs)
    rec = [float((ps[ys == c] == c).mean()) for c in range(3)]
    counts = [int((ys == c).sum()) for c in range(3)]
    assert min(counts) >= 15, counts
    # measured: 0.937 / 0.943 / 0.684 (MODEL_CARD.md); these bounds catch a broken model or pipeline
    assert rec[0] >= 0.9 and rec[1] >= 0.9 and rec[2] >= 0.55, (rec, counts)
    close = hs >= 64
    assert float((ps[close] == ys[close]).mean()) >= 0.9


@needs_shared
@needs_mask
def test_classify_whole_crops_api():
    clf = MaskClassifier(MASK_ONNX)
    img = _img("maksssksksss0.png")
    crop = img[90:150, 315:370]
    res = clf.classify([crop, cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)])
    assert len(res) == 2 and all(isinstance(m, Mask) and 0 <= c <= 1 for m, c in res)
    assert clf.classify([]) == []


@needs_shared
@needs_mask
def test_mask_detector_end_to_end():
    det = MaskDetector(YUNET, MASK_ONNX)
    assert [c.value for c in CLASSES] == ["with_mask", "without_mask", "mask_weared_incorrect"]
    dets = det.detect(_img("maksssksksss0.png"))
    assert len(dets) >= 3
    for d in dets:
        assert isinstance(d.mask, Mask) and 0 <= d.confidence <= 1 and 0 < d.face_score <= 1
        assert len(d.landmarks) == 5
    areas = [(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in dets]
    assert areas == sorted(areas, reverse=True)
    assert det.detect(np.zeros((0, 0), np.uint8)) == []
    assert det.detect(np.zeros((480, 640, 4), np.uint8)) == []


# --------------------------------------------------------------------------- runner / models
def test_missing_truncated_and_wrong_model_files(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match="nope.onnx"):
        load_model(str(missing))
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty.onnx"):
        load_model(str(empty))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not an onnx model at all" * 10)
    with pytest.raises(ModelError, match="junk.onnx"):
        load_model(str(junk))
    with pytest.raises(ModelError, match="junk.onnx"):
        FaceDetector(str(junk))


@needs_shared
def test_truncated_real_model(tmp_path):
    cut = tmp_path / "yunet_cut.onnx"
    with open(YUNET, "rb") as f:
        cut.write_bytes(f.read()[:20000])
    with pytest.raises(ModelError, match="yunet_cut.onnx"):
        FaceDetector(str(cut))


@needs_shared
def test_models_fetch_from_dir_verifies_sha256(tmp_path):
    from kiosk.cli.models import cmd_models_fetch, cmd_models_verify

    home = tmp_path / "models"
    with pytest.raises(ModelNotInstalled, match="models fetch yunet_n_dynamic --from DIR"):
        model_path("yunet_n_dynamic", str(home))
    # a tampered copy is rejected and nothing is installed
    bad = tmp_path / "bad"
    bad.mkdir()
    data = bytearray(open(YUNET, "rb").read())
    data[len(data) // 2] ^= 0xFF
    (bad / "yunet_n_dynamic.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelInstallError, match="sha256 mismatch"):
        fetch(["yunet_n_dynamic"], str(home), str(bad))
    assert not home.exists() or os.listdir(str(home)) == []
    assert cmd_models_fetch(["yunet_n_dynamic"], str(bad), str(home)) == 1
    # the real files install (the OpenCV-zoo name is found through its alias yunet_s_640_640.onnx)
    got = fetch(["yunet_n_dynamic", "yunet"], str(home), os.path.dirname(YUNET_DIR))
    assert os.path.basename(got["yunet"]) == "face_detection_yunet_2023mar.onnx"
    assert verify(str(home))["yunet_n_dynamic"] == "ok"
    assert cmd_models_verify(str(home)) == 0
    # corruption after install is reported
    with open(got["yunet"], "r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    assert verify(str(home))["yunet"].startswith("corrupt")
    assert cmd_models_verify(str(home)) == 1


@needs_shared
@needs_mask
def test_cmd_detect_json_and_bad_files(tmp_path, capsys):
    from kiosk.cli.vision import cmd_detect

    home = tmp_path / "models"
    fetch(["yunet_n_dynamic"], str(home), YUNET_DIR)
    good = tmp_path / "good.png"
    shutil.copy(os.path.join(DATA, "images", "maksssksksss0.png"), str(good))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(open(str(good), "rb").read()[:200])
    rc = cmd_detect([str(good), str(corrupt), str(tmp_path / "missing.jpg")], True, str(home), "auto")
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert rc == 1 and len(lines) == 3
    assert lines[0]["image"] == str(good) and len(lines[0]["faces"]) >= 3
    f = lines[0]["faces"][0]
    assert set(f) == {"box", "class", "confidence", "face_score"} and f["class"] in [c.value for c in CLASSES]
    assert "error" in lines[1] and "error" in lines[2]
    # models not installed: a clear message and exit 2, no traceback
    assert cmd_detect([str(good)], True, str(tmp_path / "empty"), "auto") == 2
    assert "models fetch" in capsys.readouterr().err


@needs_shared
def test_backend_selection():
    from kiosk.inference import BackendUnavailable, available_backends

    assert available_backends()["onnxruntime"] is None
    r = load_model(YUNET, backend="onnxruntime")
    assert r.input_names == ["input"] and "cls_8" in r.output_names
    out = r.run({"input": np.zeros((1, 3, 64, 96), np.float32)})
    assert out["cls_8"].shape == (1, 8 * 12, 1)
    with pytest.raises(BackendUnavailable, match="no-such-backend"):
        load_model(YUNET, backend="no-such-backend")


# ------------------------------------------------------------------------------- evaluation
def test_average_precision_hand_made_boxes():
    from kiosk.train.data import Annotation
    from kiosk.train.evaluate import IOU_THRESHOLDS, average_precision, detection_ap, summarize_ap

    # 4 GT with_mask boxes in 2 images; 4 detections ranked TP, FP, TP, (duplicate) FP; one GT missed.
    # precision at the TPs: 1/1, 2/3 -> all-point AP = 0.25 * 1 + 0.25 * 2/3 = 0.41667
    g1 = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    g2 = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    anns = [Annotation("a.png", 100, 100, g1, np.zeros(2, np.int64)),
            Annotation("b.png", 100, 100, g2, np.zeros(2, np.int64))]
    dets = [
        {"boxes": np.array([[0, 0, 10, 10], [70, 70, 80, 80]], np.float32), "labels": np.zeros(2, np.int64),
         "scores": np.array([0.9, 0.8])},
        {"boxes": np.array([[1, 0, 11, 10], [0, 1, 10, 11]], np.float32), "labels": np.zeros(2, np.int64),
         "scores": np.array([0.7, 0.6])},
    ]
    ap = detection_ap(anns, dets, IOU_THRESHOLDS)
    assert ap["0.50"]["with_mask"] == pytest.approx(0.25 + 0.25 * 2 / 3)
    assert np.isnan(ap["0.50"]["without_mask"])  # no GT of that class: left out of the mean
    # at IoU 0.95 the shifted box (IoU 0.818) no longer counts: AP = 0.25
    assert ap["0.95"]["with_mask"] == pytest.approx(0.25)
    s = summarize_ap(ap)
    assert s["map50"] == pytest.approx(0.4167, abs=1e-4) and s["ap50"]["without_mask"] is None
    assert 0.25 < s["map50_95"] < s["map50"]
    # perfect ranking -> 1, nothing detected -> 0, no GT -> nan
    assert average_precision(np.array([0.9, 0.1]), np.array([1, 1]), 2) == pytest.approx(1.0)
    assert average_precision(np.zeros(0), np.zeros(0), 3) == 0.0
    assert np.isnan(average_precision(np.zeros(0), np.zeros(0), 0))


def test_learned_box_correction_modes():
    from kiosk.vision.faces import DEFAULT_BOX_CORRECTION, correct_boxes

    b = np.array([[10, 20, 50, 70]], np.float32)
    kps = np.array([[[22, 40], [38, 40], [30, 50], [24, 60], [36, 60]]], np.float32)
    s = np.array([0.9], np.float32)
    np.testing.assert_allclose(correct_boxes(b, s, kps, (0, 0, 0, 0)), b)
    c = correct_boxes(b, s, kps, DEFAULT_BOX_CORRECTION)
    assert c[0, 1] > b[0, 1]  # constant: the top edge moves down (YuNet starts over the forehead)
    learned = correct_boxes(b, s, kps)
    assert learned.shape == (1, 4) and learned[0, 1] > b[0, 1] and np.all(np.abs(learned - b) <= 0.5 * 50)
    assert correct_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))).shape == (0, 4)
    with pytest.raises(ValueError):
        correct_boxes(b, s, kps, "bogus")


def _mini_voc(root, names):
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for n in names:
        shutil.copy(os.path.join(DATA, "images", n), str(root / "images" / n))
        shutil.copy(os.path.join(DATA, "annotations", n.replace(".png", ".xml")), str(root / "annotations"))


@needs_shared
@needs_mask
def test_cmd_eval_detector_on_three_images(tmp_path, capsys):
    from kiosk.cli.evaluate import cmd_eval_detector

    names = ["maksssksksss0.png", "maksssksksss1.png", "maksssksksss10.png"]
    data = tmp_path / "voc"
    _mini_voc(data, names)
    # a corrupt image, an XML that is not XML, and an object of an unknown class: skipped and counted
    (data / "images" / "broken.png").write_bytes(b"\x89PNG not really")
    (data / "annotations" / "broken.xml").write_text(
        "<annotation><filename>broken.png</filename><size><width>10</width><height>10</height></size>"
        "<object><name>with_mask</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"
        "</object><object><name>helmet</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
        "</bndbox></object></annotation>")
    (data / "annotations" / "junk.xml").write_text("<annotation><object>")
    out = tmp_path / "plots"
    rc = cmd_eval_detector(str(data), True, YUNET, MASK_ONNX, None, str(out))
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["images"] == 3
    assert set(rep["ap50"]) == {"with_mask", "without_mask", "mask_weared_incorrect"}
    assert 0 < rep["map50"] <= 1 and 0 < rep["map50_95"] <= rep["map50"]
    assert rep["skipped"]["unreadable_images"] == 1 and rep["skipped"]["unreadable_xml"] == 1
    assert rep["skipped"]["unknown_class_objects"] == {"helmet": 1}
    assert "map50" in rep["live"]
    assert rep["close_range_accuracy"] is None or 0 <= rep["close_range_accuracy"] <= 1
    for f in ("confusion_matrix.png", "pr_curve.png"):
        assert cv2.imread(str(out / f)) is not None
    # the split filter: only listed names that exist; empty folder and missing folder: exit 1, no traceback
    assert cmd_eval_detector(str(data), True, YUNET, MASK_ONNX, "no-such-split", None) == 1
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "annotations").mkdir()
    assert cmd_eval_detector(str(empty), True, YUNET, MASK_ONNX, None, None) == 1
    assert cmd_eval_detector(str(tmp_path / "nope"), False, YUNET, MASK_ONNX, None, None) == 1
    assert cmd_eval_detector(str(data), False, str(tmp_path / "no-models"), MASK_ONNX, None, None) == 2
    err = capsys.readouterr().err
    assert "no annotated images" in err and "missing" in err
