"""The out-of-distribution evaluation (issue 12): peer decoders, the metrics, the framing generator."""

from __future__ import annotations

import os
import struct

import cv2
import numpy as np
import pytest
from conftest import SHARED

from kiosk.train import framing, ood, peers
from kiosk.train.data import Annotation, load_dataset

PEERS = SHARED / "peers"
NO_ULTRAFACE = "UltraFace peer model not present ({}; ../shared beside the clone)".format(PEERS)
NO_AIZOO = "AIZOO peer model not present ({}; ../shared beside the clone)".format(PEERS)


# ----------------------------------------------------------------------------------------------- AIZOO


def test_aizoo_has_5972_anchors_in_its_order():
    a = peers.aizoo_anchors()
    assert a.shape == (5972, 4)
    # the first cell of the 33x33 map: sizes 0.04, 0.056 at ratio 1, then 0.04 at ratios 0.62 and 0.42
    c = 0.5 / 33
    w = [0.04, 0.056, 0.04 * np.sqrt(0.62), 0.04 * np.sqrt(0.42)]
    h = [0.04, 0.056, 0.04 / np.sqrt(0.62), 0.04 / np.sqrt(0.42)]
    np.testing.assert_allclose(a[:4], [[c - x / 2, c - y / 2, c + x / 2, c + y / 2] for x, y in zip(w, h)], atol=1e-6)
    # the next cell moves along the row (x), the 34th along the column (y)
    np.testing.assert_allclose((a[4, 0] + a[4, 2]) / 2, 1.5 / 33, atol=1e-6)
    np.testing.assert_allclose((a[33 * 4, 1] + a[33 * 4, 3]) / 2, 1.5 / 33, atol=1e-6)
    # the last map is 3x3 with 0.64 / 0.72 anchors centred at 5/6
    np.testing.assert_allclose(a[-4], [5 / 6 - 0.32, 5 / 6 - 0.32, 5 / 6 + 0.32, 5 / 6 + 0.32], atol=1e-6)


def test_aizoo_decoder_on_a_synthetic_prior():
    prior = np.array([[0.4, 0.4, 0.6, 0.6]], np.float32)  # centre 0.5, size 0.2
    np.testing.assert_allclose(peers.aizoo_decode(prior, np.zeros((1, 4))), prior, atol=1e-6)
    # dx = 1 -> centre moves by 0.1 x 0.2; dw = ln(2) / 0.2 -> width doubles; dh = -ln(2) / 0.2 -> height halves
    loc = np.array([[1.0, -2.0, np.log(2) / 0.2, -np.log(2) / 0.2]])
    cx, cy, w, h = 0.5 + 0.02, 0.5 - 0.04, 0.4, 0.1
    np.testing.assert_allclose(peers.aizoo_decode(prior, loc), [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]],
                               atol=1e-6)


def test_aizoo_nms_is_class_agnostic_greedy_with_its_thresholds():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [40, 40, 50, 50], [0, 0, 10, 14]],
                     np.float32) / 100
    conf = np.array([0.9, 0.8, 0.7, 0.5, 0.6])  # 0.5 is not > 0.5: dropped
    keep = list(peers.aizoo_nms(boxes, conf, 0.5, 0.4))
    # box 1 overlaps box 0 by IoU 0.82 -> gone; box 4 by 0.71 -> gone; box 2 stays
    assert keep == [0, 2]
    assert list(peers.aizoo_nms(boxes, conf, 0.5, 0.9)) == [0, 1, 2, 4]  # best first, none overlaps > 0.9


def test_conv_and_ceil_mode_pooling_of_the_numpy_caffe_runner():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y = peers._conv(x, w, b, 1, 1)
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    ref = np.zeros((4, 7, 6), np.float32)
    for o in range(4):
        for i in range(7):
            for j in range(6):
                ref[o, i, j] = (xp[:, i:i + 3, j:j + 3] * w[o]).sum() + b[o]
    np.testing.assert_allclose(y[0], ref, rtol=1e-4, atol=1e-4)
    assert peers._conv(x, w, None, 0, 1).shape == (1, 4, 5, 4)  # the head's unpadded conv: 5 -> 3 as in the net
    p = peers._maxpool(np.arange(65 * 65, dtype=np.float32).reshape(1, 1, 65, 65), 2, 2)
    assert p.shape == (1, 1, 33, 33)  # Caffe's ceil mode: 65 -> 33 (the 33x33 feature map)
    assert p[0, 0, -1, -1] == 65 * 65 - 1 and p[0, 0, 0, 0] == 66


def _varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _ld(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def test_caffemodel_reader_on_a_handmade_message():
    data = np.arange(6, dtype="<f4")
    shape = _ld(1, _varint(2) + _varint(3))  # BlobShape.dim packed
    blob = _ld(7, shape) + _ld(5, data.tobytes())
    legacy_blob = (_varint(1 << 3) + _varint(1) + _varint(2 << 3) + _varint(1) + _varint(3 << 3) + _varint(1)
                   + _varint(4 << 3) + _varint(2) + b"".join(_varint(5 << 3 | 5) + struct.pack("<f", v) for v in (7, 8)))
    layer = _ld(1, b"conv") + _ld(2, b"Convolution") + _ld(7, blob) + _ld(7, legacy_blob)
    net = _ld(1, b"net") + _ld(100, layer)
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "ood_test_{}.caffemodel".format(os.getpid()))
    with open(path, "wb") as f:
        f.write(net)
    try:
        w = peers.read_caffemodel(path)
    finally:
        os.remove(path)
    assert list(w) == ["conv"]
    np.testing.assert_array_equal(w["conv"][0], data.reshape(2, 3))
    np.testing.assert_array_equal(w["conv"][1], np.array([7, 8], np.float32).reshape(1, 1, 1, 2))


@pytest.mark.skipif(not peers.aizoo_available(str(PEERS)), reason=NO_AIZOO)
def test_aizoo_peer_runs_and_matches_opencv_where_it_can():
    proto, model = (str(PEERS / f) for f in peers.AIZOO_FILES)
    net = peers.AizooMask(proto, model, engine="numpy")
    img = np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8)
    loc, cls = net.raw(img)
    assert loc.shape == (5972, 4) and cls.shape == (5972, 2) and 0 <= cls.min() and cls.max() <= 1
    for _box, label, score in net.predict(img):
        assert label in ("with_mask", "without_mask") and score > 0.5
    if not peers.has_caffe_importer():
        pytest.skip("this OpenCV ({}) has no Caffe importer to compare with (OpenCV 5 dropped it)".format(
            cv2.__version__))
    ref = peers.AizooMask(proto, model, engine="opencv").raw(img)
    np.testing.assert_allclose(loc, ref[0], atol=1e-3)
    np.testing.assert_allclose(cls, ref[1], atol=1e-4)


# ----------------------------------------------------------------------------------------------- UltraFace


def _bare_ultraface():
    u = object.__new__(peers.UltraFaceMasked)
    u.threshold, u.iou, u.candidate_size = 0.6, 0.3, 200
    return u


def test_ultraface_postprocessing_on_a_synthetic_output():
    scores = np.array([[0.1, 0.05, 0.85],  # masked face
                       [0.2, 0.1, 0.7],  # the same face, a little shifted: suppressed (IoU > 0.3)
                       [0.1, 0.8, 0.1],  # an unmasked face elsewhere
                       [0.5, 0.45, 0.05],  # below the threshold
                       [0.3, 0.65, 0.05]], np.float32)  # overlaps the masked face but is another class: kept
    boxes = np.array([[0.1, 0.1, 0.3, 0.4], [0.11, 0.1, 0.31, 0.4], [0.6, 0.5, 0.8, 0.9], [0, 0, 1, 1],
                      [0.1, 0.1, 0.3, 0.4]], np.float32)
    b, c, s = _bare_ultraface().postprocess(scores, boxes, 640, 480)
    assert list(c) == [2, 1, 1] and np.allclose(s, [0.85, 0.8, 0.65])
    np.testing.assert_allclose(b[0], [64, 48, 192, 192], atol=1e-4)
    assert [peers.UltraFaceMasked.CLASS_OF[int(x)] for x in c] == ["with_mask", "without_mask", "without_mask"]
    # for AP every box down to 0.1 is kept; those above its own threshold are exactly what it reports
    lb, lc, ls = _bare_ultraface().postprocess(scores, boxes, 640, 480, 0.1)
    assert len(ls) > len(s)
    np.testing.assert_array_equal(lb[ls > 0.6], b)


def test_low_threshold_nms_keeps_exactly_the_operating_boxes_above_it():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 0.8, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.2, (300, 2))], 1).astype(np.float32)
    conf = rng.uniform(0, 1, 300)
    low = peers.aizoo_nms(boxes, conf, 0.1, 0.4)
    assert list(low[conf[low] > 0.5]) == list(peers.aizoo_nms(boxes, conf, 0.5, 0.4))


@pytest.mark.skipif(not peers.ultraface_available(str(PEERS)), reason=NO_ULTRAFACE)
def test_ultraface_peer_predicts_the_masked_demo_face():
    from kiosk.bench.vision import UltraFaceMasked, demo_frames

    u = UltraFaceMasked(str(PEERS / peers.ULTRAFACE_FILE))
    assert [c for _, c, _ in u.predict(demo_frames(2)[0])] == ["with_mask"]


# ----------------------------------------------------------------------------------------------- metrics


def _ann(boxes, labels, name="x.png"):
    return Annotation(name, 640, 480, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64))


def _dets(boxes, labels, scores=None, op=None):
    n = len(labels)
    return {"boxes": np.asarray(boxes, np.float32).reshape(n, 4), "labels": np.asarray(labels, np.int64),
            "scores": np.asarray(scores if scores is not None else [0.9] * n, np.float32),
            "op": np.asarray(op if op is not None else [True] * n, bool)}


FACE = [100, 100, 200, 220]


def test_image_level_metric_on_a_handmade_case():
    anns = [_ann([FACE, [300, 300, 320, 320]], [0, 1]),  # masked, read right (the small face does not count)
            _ann([FACE], [0]),  # masked, called "incorrect"
            _ann([FACE], [1]),  # unmasked, only a detection the model does not act on: no face
            _ann([FACE], [1]),  # unmasked, read right
            _ann([FACE], [1]),  # unmasked, called "incorrect"
            _ann([FACE], [0]),  # masked, only an eye found (a fragment, not the face): the gate reads the eye
            _ann([FACE], [2])]  # incorrectly worn, called incorrect: counted apart
    eye = [120, 130, 140, 145]
    unsure = dict(_dets([FACE], [2]), sure=np.array([False]))  # a calibrated "incorrect" below its threshold
    dets = [_dets([FACE], [0]), unsure, _dets([FACE], [1], op=[False]), _dets([FACE], [1]),
            _dets([FACE], [2]), _dets([eye], [1]), _dets([FACE], [2])]
    im = ood.image_level(anns, dets, 0.5)
    assert (im["images"], im["with_mask_images"], im["without_mask_images"], im["incorrect_images"]) == (7, 3, 3, 1)
    # mask / no mask: the masked face called "incorrect" is read as a mask (the scoring) ...
    assert im["with_mask_recall"] == round(2 / 3, 4) and im["without_mask_recall"] == round(1 / 3, 4)
    assert im["balanced_accuracy"] == 0.5
    # ... and strictly it is wrong: a correctly worn mask must be read with_mask
    assert im["strict_balanced_accuracy"] == round(1 / 3, 4)
    assert im["no_face_rate"] == round(1 / 7, 4) and im["wrong_face_rate"] == round(1 / 7, 4)
    assert im["masked_called_incorrect"] == round(1 / 3, 4)
    assert im["unmasked_called_incorrect"] == round(1 / 3, 4)
    assert im["masked_sure_incorrect"] == 0.0 and im["unmasked_sure_incorrect"] == round(1 / 3, 4)
    assert im["incorrect_called_incorrect"] == 1.0


def test_gate_reads_a_profile_face_in_a_head_of_hair_through_the_head_conversion():
    head = np.array([[100, 100, 300, 300]], np.float32)  # a whole head, mostly hair
    face = [230, 200, 290, 280]  # a profile face at its edge: 12 % of the head's area, not "on" it by itself
    anns = [_ann(head, [0])]
    dets = [_dets([face], [0])]
    assert ood.image_level(anns, dets, 0.3)["wrong_face_rate"] == 1.0
    # the head conversion (fitted on other photos) turns the face box into a head box: IoU >= 0.5 with the head
    conv = (-2.0, -1.3, 0.2, 0.25)
    converted = [ood.convert_boxes(d, conv) for d in dets]
    assert float(ood.iou_matrix(converted[0]["boxes"], head)[0, 0]) >= 0.5
    im = ood.image_level(anns, dets, 0.3, converted)
    assert im["wrong_face_rate"] == 0.0 and im["balanced_accuracy"] == 1.0
    # a conversion that misses the head does not make a match
    unmoved = [ood.convert_boxes(d, (0.0, 0.0, 0.0, 0.0)) for d in dets]
    assert ood.image_level(anns, dets, 0.3, unmoved)["wrong_face_rate"] == 1.0


def test_loose_matching_of_a_face_box_to_a_whole_head_box():
    head = np.array([[90, 60, 210, 230]], np.float32)
    face = np.array([[105, 110, 195, 225]], np.float32)  # IoU with the head box ~0.5
    iou = float(ood.iou_matrix(face, head)[0, 0])
    assert 0.3 < iou < 0.55
    assert list(ood.match_faces(head, face, np.array([0.9]), 0.3)) == [0]
    assert list(ood.match_faces(head, face, np.array([0.9]), iou + 0.01)) == [-1]
    # one to one: two detections on one face -> the better one matches, the other is a false detection
    two = np.concatenate([face, face + 2])
    assert list(ood.match_faces(head, two, np.array([0.5, 0.9]), 0.3)) == [1]
    f = ood.found_faces([_ann(head, [0])], [_dets(two, [2, 0], [0.5, 0.9])], 0.3)
    assert (f["recall"], f["class_accuracy"], f["called_incorrect"], f["false_per_image"]) == (1.0, 1.0, 0.0, 1.0)
    # on the face for the gate: a face box inside the head box yes, an eye no
    assert list(ood.on_face(head[0], np.array([[105, 110, 195, 225], [120, 130, 140, 145]], np.float32), 0.99)) == [
        True, False]


def test_ap_views_merge_incorrect_into_mask_for_every_model():
    anns = [_ann([FACE, [300, 100, 400, 220]], [2, 1])]
    dets = [_dets([FACE, [300, 100, 400, 220]], [0, 1])]  # a 2-class model calls the incorrect mask "mask"
    ap = ood.ap_scores(anns, dets, 0.5, True)
    assert ap["map_2class"] == 1.0 and ap["ap_2class"] == {"with_mask": 1.0, "without_mask": 1.0}
    assert ap["ap_3class"]["mask_weared_incorrect"] == 0.0 and ap["ap_3class"]["with_mask"] is None


def test_box_conversion_is_recovered_and_applied():
    det = np.array([[100, 100, 200, 220], [300, 50, 340, 100]], np.float32)
    conv = (-0.1, -0.3, 0.05, 0.1)
    wh = np.stack([det[:, 2] - det[:, 0], det[:, 3] - det[:, 1]] * 2, 1)
    gt = det + wh * np.array(conv, np.float32)
    fit, pairs = ood.fit_box_conversion([_ann(gt, [0, 1])], [_dets(det, [0, 1])], 0.3)
    assert pairs == 2 and np.allclose(fit, conv, atol=1e-5)
    np.testing.assert_allclose(ood.convert_boxes(_dets(det, [0, 1]), fit)["boxes"], gt, atol=1e-3)


# ----------------------------------------------------------------------------------------------- framing

RED = (0, 0, 255)


def _voc_set(root, n=3):
    """A tiny VOC set: grey-noise photos with red "faces" exactly filling their boxes."""
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "annotations"))
    rng = np.random.default_rng(5)
    for k in range(n):
        img = rng.integers(60, 140, (300, 400, 3), np.uint8)
        img[..., 2] = img[..., 1]  # grey-ish: no red
        boxes = [[40 + 20 * k, 50, 100 + 20 * k, 130], [250, 150, 280, 190]]
        for x1, y1, x2, y2 in boxes:
            img[y1:y2, x1:x2] = RED
        name = "img{}.png".format(k)
        cv2.imwrite(os.path.join(root, "images", name), img)
        with open(os.path.join(root, "annotations", "img{}.xml".format(k)), "w") as f:
            f.write(framing.voc_xml(name, 400, 300, np.array(boxes, np.float32), [0, 1]))
    return load_dataset(root)


@pytest.mark.parametrize("variant", framing.VARIANTS)
def test_framing_is_deterministic_and_boxes_land_on_the_face(tmp_path, variant):
    anns = _voc_set(str(tmp_path / "src"))
    outs = []
    for k, seed in enumerate((0, 0, 1)):
        out = str(tmp_path / "{}_{}".format(variant, k))
        m = framing.make_variant(str(tmp_path / "src"), anns, variant, out, seed=seed, min_face=24)
        assert m["frames"] == 6  # two faces an image, both sizeable
        outs.append(out)
    files = sorted(os.listdir(os.path.join(outs[0], "images")))
    same = [open(os.path.join(outs[0], "images", f), "rb").read() == open(os.path.join(outs[1], "images", f),
                                                                           "rb").read() for f in files]
    other = [open(os.path.join(outs[0], "images", f), "rb").read() == open(os.path.join(outs[2], "images", f),
                                                                            "rb").read() for f in files]
    assert all(same) and not all(other)
    for a in load_dataset(outs[0]):
        img = cv2.imread(os.path.join(outs[0], "images", a.image))
        if variant != "crop":
            assert img.shape == (480, 640, 3)
        g = int(np.argmax((a.boxes[:, 2] - a.boxes[:, 0]) * (a.boxes[:, 3] - a.boxes[:, 1])))
        x1, y1, x2, y2 = np.round(a.boxes[g]).astype(int) + np.array([3, 3, -3, -3])
        inner = img[y1:y2, x1:x2].reshape(-1, 3).astype(int)
        red = (inner[:, 2] > 200) & (inner[:, 1] < 60) & (inner[:, 0] < 60)
        assert red.mean() > 0.9, (a.image, red.mean())
        h = a.boxes[g, 3] - a.boxes[g, 1]
        if variant != "crop":
            assert 100 - 2 <= h <= 300 + 2  # a gate camera's face size


def test_eval_frame_command_writes_a_voc_folder(tmp_path):
    from kiosk.cli import main

    _voc_set(str(tmp_path / "src"))
    out = str(tmp_path / "framed")
    assert main(["eval", "frame", "--data", str(tmp_path / "src"), "--variant", "paste", "--out", out]) == 0
    framed = load_dataset(out)
    assert len(framed) == 6 and all(len(a.boxes) == 1 for a in framed)


class _Oracle:
    """A fake 2-class model that finds every red face and calls it masked."""

    name = "oracle"
    classes = 2

    def predict(self, img):
        mask = ((img[..., 2] > 200) & (img[..., 1] < 60)).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        # bigger faces score higher: the (big) masked faces rank above the (small) unmasked ones
        return [((float(x), float(y), float(x + w), float(y + h)), "with_mask", min(0.99, area / 10000))
                for x, y, w, h, area in stats[1:] if area > 50]


def test_evaluate_sets_reports_every_figure_for_a_model(tmp_path):
    _voc_set(str(tmp_path / "src"))
    s = ood.EvalSet("tiny", str(tmp_path / "src"), None, 0.5)
    rep = ood.evaluate_sets(_Oracle, [s])["tiny"]
    assert rep["images"] == 3 and rep["faces"] == 6
    assert rep["found"]["recall"] == 1.0 and rep["found"]["class_accuracy"] == 0.5
    assert rep["image"]["balanced_accuracy"] == 1.0  # the largest face of each image is the masked one
    assert rep["ap"]["ap_2class"]["with_mask"] == 1.0 and rep["ap"]["ap_2class"]["without_mask"] == 0.0
    line = ood.summary_line("oracle", {"tiny": rep})
    assert line.startswith("oracle: gate bal.acc mean 1.0")
    result = {"sets": {"tiny": {"iou": 0.5}}, "models": {"oracle": {"tiny": rep}}}
    assert "| tiny | oracle |" in ood.markdown_tables(result)
    assert "| tiny | 1.000 / 0.0 % / 0.0 % (0.0 %) |" in ood.side_by_side(result)


def test_kiosk_model_reads_the_classifier_as_the_gate_does():
    from kiosk.vision.mask import Calibration

    class Det:
        classifier = type("C", (), {"calibration": Calibration(1.0, 0.8)})()

        def detect_arrays(self, img):
            boxes = np.array([[0, 0, 50, 60], [100, 0, 150, 60], [200, 0, 250, 60]], np.float32)
            probs = np.array([[0.2, 0.1, 0.7], [0.05, 0.05, 0.9], [0.1, 0.8, 0.1]], np.float32)
            return boxes, np.array([0.9, 0.3, 0.6], np.float32), probs, np.zeros((3, 5, 2), np.float32)

    m = peers.KioskModel(Det(), operating_face_score=0.5)
    preds, op, sure = m.predict_full(np.zeros((80, 300, 3), np.uint8))
    assert [c for _, c, _ in preds] == ["mask_weared_incorrect", "mask_weared_incorrect", "without_mask"]
    assert op == [True, False, True] and sure == [False, True, True]
    assert abs(preds[0][2] - 0.9 * 0.7) < 1e-6


@pytest.mark.skipif(not peers.ultraface_available(str(PEERS)), reason=NO_ULTRAFACE)
def test_eval_detector_over_every_set_from_the_command_line(tmp_path, monkeypatch, capsys):
    """The multi-set report end to end on tiny synthetic sets (splits from $DABAI_ENGINES), one peer."""
    import json

    from kiosk.cli import main

    anns = _voc_set(str(tmp_path / "src"))
    splits = tmp_path / "engines" / "splits"
    splits.mkdir(parents=True)
    for name in ("test", "mask_wearing_check", "mask_wearing_train"):
        (splits / (name + ".txt")).write_text("\n".join(a.image for a in anns) + "\n")
    monkeypatch.setenv("DABAI_ENGINES", str(tmp_path / "engines"))
    argv = ["--home", str(tmp_path / "home"), "eval", "detector", "--models", "ultraface", "--peers", str(PEERS),
            "--facemask-data", str(tmp_path / "src"), "--mask-wearing-data", str(tmp_path / "src"),
            "--frames-dir", str(tmp_path / "frames"), "--quiet", "--json"]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert list(rep["sets"]) == ["facemask_test", "mask_wearing_check", "facemask_test_frame", "facemask_test_paste",
                                 "facemask_test_crop", "mask_wearing_check_frame", "mask_wearing_check_paste",
                                 "mask_wearing_check_crop"]
    assert rep["sets"]["mask_wearing_check"]["iou"] == 0.3 and rep["sets"]["facemask_test"]["iou"] == 0.5
    uf = rep["models"]["ultraface"]
    assert "converted" in uf["mask_wearing_check"] and "converted" not in uf["facemask_test"]
    assert uf["facemask_test_paste"]["images"] == 6 and rep["summary"]["ultraface"].startswith("ultraface: ")
    assert main(argv[:-1] + ["--models", "kiosk_live,nope"]) == 2  # an unknown model is an error


def test_choices_use_mask_wearings_train_half_never_its_check_half(tmp_path, monkeypatch):
    """``--split val`` (for choices) scores mask_wearing_train and its views; only the test report reads check."""
    anns = _voc_set(str(tmp_path / "src"))
    splits = tmp_path / "engines" / "splits"
    splits.mkdir(parents=True)
    for name in ("val", "test", "mask_wearing_train"):
        (splits / (name + ".txt")).write_text("\n".join(a.image for a in anns) + "\n")
    (splits / "mask_wearing_check.txt").write_text("no-such-image.jpg\n")
    monkeypatch.setenv("DABAI_ENGINES", str(tmp_path / "engines"))
    kw = dict(facemask_dir=str(tmp_path / "src"), mask_wearing_dir=str(tmp_path / "src"),
              frames_root=str(tmp_path / "frames"))
    sets = ood.default_sets(["facemask", "mask_wearing", "mask_wearing_paste"], split="val", **kw)
    assert [s.name for s in sets] == ["facemask_val", "mask_wearing_train", "mask_wearing_train_paste"]
    assert sets[1].names == [a.image for a in anns] and sets[1].head_boxes and sets[1].iou == 0.3
    report = ood.default_sets(["mask_wearing"], split="test", **kw)
    assert report[0].name == "mask_wearing_check" and report[0].names == ["no-such-image.jpg"]
