"""Issue 12's training levers of the mask classifier: mask_wearing crops, its selection split, tight crops,
occluders and lighting. The crop and occluder code needs no torch; the tests that do skip without it."""

import os

import cv2
import numpy as np
import pytest

from kiosk.train import mask_classifier as mc
from kiosk.train import synthetic_masks as sm
from kiosk.train.data import CLASSES

ROOT = os.path.join(os.path.dirname(__file__), "..")
SPLITS = os.path.join(ROOT, "engines", "splits")
WITH, WITHOUT = CLASSES.index("with_mask"), CLASSES.index("without_mask")


def _names(path: str) -> list:
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


def test_every_fifth_series_block_goes_to_selection_and_a_series_never_straddles() -> None:
    # blocks of four source numbers: 1-4, 5-8, ... ; 10 blocks with 2 images each
    names = ["mw_train_{:03d}.png".format(n) for b in range(10) for n in (4 * b + 1, 4 * b + 3)]
    fit, select = mc.split_blocks(names)
    assert select == ["mw_train_017.png", "mw_train_019.png", "mw_train_037.png", "mw_train_039.png"]
    assert sorted(fit + select) == sorted(names) and not set(fit) & set(select)
    assert mc.series_block("mw_test_004.png") == ("mw_test", 0) != mc.series_block("mw_train_004.png")
    assert mc.series_block("mw_train_005.png") == ("mw_train", 1)


def test_the_committed_selection_split_is_the_rule_applied_to_the_training_half() -> None:
    train = _names(os.path.join(SPLITS, "mask_wearing_train.txt"))
    fit = _names(os.path.join(SPLITS, "mask_wearing_fit.txt"))
    select = _names(os.path.join(SPLITS, "mask_wearing_select.txt"))
    assert (fit, select) == mc.split_blocks(train)
    check_blocks = {mc.series_block(n) for n in _names(os.path.join(SPLITS, "mask_wearing_check.txt"))}
    assert not {mc.series_block(n) for n in fit + select} & check_blocks


class _FakeDetector:
    """Stands in for kiosk.vision.faces.FaceDetector: one face-tight box inside the head box, one stray box."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def detect_arrays(self, img: np.ndarray):  # type: ignore[no-untyped-def]
        boxes = np.array([[32, 30, 88, 100], [150, 150, 170, 170]], np.float32)
        return boxes, np.array([0.9, 0.6], np.float32), np.zeros((2, 5, 2), np.float32)


def _voc(tmp_path, label: int) -> str:  # type: ignore[no-untyped-def]
    from kiosk.train.framing import voc_xml

    os.makedirs(str(tmp_path / "images"))
    os.makedirs(str(tmp_path / "annotations"))
    cv2.imwrite(str(tmp_path / "images" / "mw_train_001.png"), np.full((200, 200, 3), 90, np.uint8))
    head = np.array([[20, 10, 100, 110]], np.float32)  # whole head: IoU with the face box ~0.49
    (tmp_path / "annotations" / "mw_train_001.xml").write_text(voc_xml("mw_train_001.png", 200, 200, head, [label]))
    return str(tmp_path)


def test_extra_set_crops_are_detector_boxes_matched_at_iou_0_3_with_the_head_label(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import kiosk.vision.faces as faces

    monkeypatch.setattr(faces, "FaceDetector", _FakeDetector)
    data = _voc(tmp_path, WITHOUT)
    ex = mc.build_set(data, ["mw_train_001.png"], "fake.onnx", min_iou=mc.EXTRA_MIN_IOU, box_correction="identity",
                      gt_crops=False, det_source="extra")
    # one match per detector setting, no GT (head) crop, the stray box dropped
    assert len(ex) == len(mc.DETECTOR_SETTINGS) and set(ex.source) == {"extra"} and set(ex.labels) == {WITHOUT}
    assert all(np.allclose(b, [32, 30, 88, 100]) for b in ex.boxes)
    strict = mc.build_set(data, ["mw_train_001.png"], "fake.onnx", min_iou=0.5, box_correction="identity", gt_crops=False)
    assert len(strict) == 0  # the facemask rule (0.4+) would not match face boxes to head boxes

    base = mc.CropSet()
    base.images.append(np.zeros((10, 10, 3), np.uint8))
    base.add(0, np.array([1, 1, 5, 5]), WITH, "gt")
    base.extend(ex)
    assert base.img_idx == [0] + [1] * len(ex) and base.labels == [WITH] + [WITHOUT] * len(ex)
    assert len(base.images) == 2 and len(base.boxes) == len(base.paint) == len(base.landmarks) == len(base)


def _face_set(label: int = WITHOUT) -> mc.CropSet:
    """A bright square 'face' on a dark background, its box exact."""
    img = np.full((240, 240, 3), 20, np.uint8)
    img[80:160, 80:160] = (150, 170, 210)
    cs = mc.CropSet()
    cs.images.append(img)
    cs.add(0, np.array([80, 80, 160, 160]), label, "gt")
    return cs


def test_without_augment_make_batch_draws_the_random_numbers_it_always_drew() -> None:
    from kiosk.vision.mask import CROP_MARGIN, crop_boxes

    cs = _face_set()
    idx = np.zeros(6, np.int64)
    rng_new, rng_ref = np.random.RandomState(3), np.random.RandomState(3)
    got = mc.make_batch(cs, idx, rng_new)
    ref = []
    for _ in idx:  # the recipe before issue 12: jitter, crop, flip half of them
        c = crop_boxes(cs.images[0], mc.jitter_box(cs.boxes[0], rng_ref)[None], 64, CROP_MARGIN)[0]
        ref.append(c[:, ::-1] if rng_ref.rand() < 0.5 else c)
    want = np.ascontiguousarray(np.stack(ref)[..., ::-1].transpose(0, 3, 1, 2) / 255.0)
    assert np.allclose(got, want) and rng_new.rand() == rng_ref.rand()


def test_augmented_batches_are_deterministic_per_seed_and_keep_shape_and_range() -> None:
    cs = _face_set()
    idx = np.zeros(16, np.int64)
    a = mc.make_batch(cs, idx, np.random.RandomState(7), augment=True)
    b = mc.make_batch(cs, idx, np.random.RandomState(7), augment=True)
    c = mc.make_batch(cs, idx, np.random.RandomState(8), augment=True)
    assert a.shape == (16, 3, 64, 64) and a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.0 <= a.min() and a.max() <= 1.0


def test_tight_crops_let_the_face_fill_the_crop(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(mc, "SUNGLASSES_P", 0.0)
    monkeypatch.setattr(mc, "CHIN_BAND_P", 0.0)
    monkeypatch.setattr(mc, "HAND_P", 0.0)
    cs = _face_set()
    idx = np.zeros(32, np.int64)
    face_share = lambda x: float((x.mean(1) > 0.3).mean())  # noqa: E731  (bright pixels = face)
    normal = face_share(mc.make_batch(cs, idx, np.random.RandomState(0)))
    monkeypatch.setattr(mc, "TIGHT_P", 1.0)
    tight = face_share(mc.make_batch(cs, idx, np.random.RandomState(0), augment=True))
    assert normal < 0.65 < 0.8 < tight


def _crop() -> np.ndarray:
    c = np.full((64, 64, 3), 180.0, np.float32)  # a flat light face filling the crop's face box
    return c


FACE = (7.0, 7.0, 57.0, 57.0)  # the face box inside a 64 px crop with the kiosk's 15 % margin


def test_sunglasses_darken_the_eye_line_only() -> None:
    out = sm.paint_sunglasses(_crop(), FACE, np.random.RandomState(0))
    eye_row, mouth_row = int(7 + 50 * 0.38), int(7 + 50 * 0.8)
    assert out[eye_row, 16:48].mean() < 120 and np.allclose(out[mouth_row], 180)


def test_a_hand_covers_the_mouth_in_skin_tone_and_leaves_the_eyes() -> None:
    crop = _crop()
    crop[..., 0] = 120  # a skin-like BGR tone: the hand takes it from the cheeks
    out = sm.paint_hand(crop, FACE, np.random.RandomState(1))
    mouth = out[int(7 + 50 * 0.78), 24:40]
    assert np.abs(mouth - crop[0, 0]).max() > 3  # painted (shaded)
    assert np.abs(mouth[:, 0] / mouth[:, 2] - 120 / 180).max() < 0.15  # still the face's hue
    assert np.allclose(out[int(7 + 50 * 0.35)], crop[0, 0])


def test_the_chin_band_is_flat_and_below_the_face() -> None:
    out = sm.paint_chin_band(_crop(), FACE, np.random.RandomState(2))
    assert np.allclose(out[:50], 180) and np.ptp(out[60:].reshape(-1, 3), axis=0).max() == 0


def test_only_unmasked_unpainted_faces_get_a_hand(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(mc, "SUNGLASSES_P", 0.0)
    monkeypatch.setattr(mc, "CHIN_BAND_P", 0.0)
    monkeypatch.setattr(mc, "HAND_P", 1.0)
    crop = _crop()
    assert np.array_equal(mc.occlude(crop, FACE, WITH, False, np.random.RandomState(0)), crop)
    assert np.array_equal(mc.occlude(crop, FACE, WITHOUT, True, np.random.RandomState(0)), crop)  # a painted mask
    assert not np.array_equal(mc.occlude(crop, FACE, WITHOUT, False, np.random.RandomState(0)), crop)


def test_strong_lighting_is_seeded_and_stays_in_range() -> None:
    torch = pytest.importorskip("torch")
    x = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    a = mc.photometric(x.clone(), torch.Generator().manual_seed(1), True)
    b = mc.photometric(x.clone(), torch.Generator().manual_seed(1), True)
    plain = mc.photometric(x.clone(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, plain) and float(a.min()) >= 0 and float(a.max()) <= 1


def test_a_shipped_classifier_loads_into_the_fused_network_for_fine_tuning() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    path = os.path.join(ROOT, "engines", "mask_classifier_ft.onnx")
    model = mc.build_model(fused=True)
    mc.load_onnx_weights(model, path)  # raises if the outputs differ from onnxruntime's
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with pytest.raises(ValueError, match="layers"):
        mc.load_onnx_weights(mc.build_model(fused=True, width=1)[:-2], path)


def test_the_teacher_reads_the_students_input_and_its_loss_is_zero_only_when_they_agree() -> None:
    torch = pytest.importorskip("torch")
    teacher = mc.Teacher(os.path.join(ROOT, "engines", "mask_classifier_aizoo.onnx"), 64)
    x = np.random.RandomState(0).randn(4, 3, 64, 64).astype(np.float32)
    lp = teacher.log_probs(x)
    assert lp.shape == (4, 3) and np.allclose(np.exp(lp).sum(1), 1.0, atol=1e-4)
    t = torch.from_numpy(lp)
    assert float(mc.distill_loss(t.clone(), t, 2.0)) == pytest.approx(0.0, abs=1e-6)
    wrong = torch.from_numpy(lp[:, ::-1].copy())  # the student believes the reverse
    assert float(mc.distill_loss(wrong, t, 2.0)) > float(mc.distill_loss(t * 0.5, t, 2.0)) > 0
    with pytest.raises(ValueError, match="32 px"):
        mc.Teacher(os.path.join(ROOT, "engines", "mask_classifier_aizoo.onnx"), 32)


def test_gate_views_score_the_largest_face_as_the_gate_reads_it() -> None:
    torch = pytest.importorskip("torch")
    from kiosk.train.data import Annotation
    from kiosk.train.ood import EvalSet

    class ByMeanPixel(torch.nn.Module):  # "with_mask" for a bright crop, "without_mask" for a dark one
        def forward(self, x):  # type: ignore[no-untyped-def]
            m = x.mean(dim=(1, 2, 3))
            return torch.stack([m * 10, -m * 10, torch.zeros_like(m) - 5], 1)

    def ann(label: int) -> Annotation:
        return Annotation("x.png", 640, 480, np.array([[100, 100, 300, 300], [400, 100, 440, 140]], np.float32),
                          np.array([label, WITHOUT], np.int64))

    box = np.array([[105, 100, 300, 295]], np.float32)
    bright, dark = np.ones((1, 3, 64, 64), np.float32), -np.ones((1, 3, 64, 64), np.float32)
    views = mc.GateViews.__new__(mc.GateViews)
    # four images: a masked face read bright (right), an unmasked one read dark (right), an unmasked one read
    # bright (wrong), and a masked face the detector missed (wrong)
    views.sets = [(EvalSet("v", "."), [ann(WITH), ann(WITHOUT), ann(WITHOUT), ann(WITH)],
                   [(box, np.array([0.9])), (box, np.array([0.9])), (box, np.array([0.9])), (box[:0], np.zeros(0))],
                   None, np.concatenate([bright, dark, bright]))]
    r = mc.GateViews.evaluate(views, ByMeanPixel())
    assert r["views"]["v"]["with_mask_recall"] == 0.5 and r["views"]["v"]["without_mask_recall"] == 0.5
    assert r["gate_bal_acc"] == 0.5 and r["views"]["v"]["no_face_rate"] == 0.25


LANDMARKS = np.array([[22, 26], [42, 26], [32, 36], [24, 46], [40, 46]], np.float32)  # eyes, nose tip, mouth corners


@pytest.mark.parametrize("style", sm.STYLES)
def test_every_mask_style_keeps_its_top_edge_where_the_class_says(style, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sm, "STYLE_P", tuple(float(s == style) for s in sm.STYLES))
    nose_y = float(LANDMARKS[2, 1])
    for seed in range(8):
        crop = _crop()
        tops = {}
        for kind in (sm.CORRECT, sm.INCORRECT):
            out = sm.paint_mask(crop, LANDMARKS, FACE, kind, np.random.RandomState(seed), styles=True)
            centre = np.abs(out[:, 26:38] - crop[:, 26:38]).max(axis=(1, 2)) > 20  # rows painted in the middle
            tops[kind] = int(np.argmax(centre))
            assert centre.any() and out.min() >= 0 and out.max() <= 255
        assert tops[sm.CORRECT] < nose_y < tops[sm.INCORRECT], (style, seed, tops)


def test_styles_vary_the_surface_and_off_draws_as_before() -> None:
    crop = _crop()
    plain = [sm.paint_mask(crop, LANDMARKS, FACE, sm.CORRECT, np.random.RandomState(s)) for s in range(12)]
    styled = [sm.paint_mask(crop, LANDMARKS, FACE, sm.CORRECT, np.random.RandomState(s), styles=True) for s in range(12)]
    # without styles the seed decides everything, as before (the shipped models' recipe retrains the same)
    assert np.array_equal(plain[0], sm.paint_mask(crop, LANDMARKS, FACE, sm.CORRECT, np.random.RandomState(0)))
    # with styles, the masks differ in outline: the painted area's size varies more than the plain ones'
    area = lambda x: int((np.abs(x - crop).max(2) > 20).sum())  # noqa: E731
    assert np.std([area(x) for x in styled]) > np.std([area(x) for x in plain])
    assert any(not np.array_equal(a, b) for a, b in zip(plain, styled))


def _scenes(tmp_path) -> tuple:  # type: ignore[no-untyped-def]
    """Two 200x160 images, each with two bright 'faces' on a dark textured ground, as a VOC folder."""
    from kiosk.train.data import Annotation

    os.makedirs(os.path.join(str(tmp_path), "images"))
    rng = np.random.RandomState(0)
    anns = []
    for k in range(2):
        img = rng.randint(0, 60, (160, 200, 3)).astype(np.uint8)
        boxes = np.array([[30, 40, 70, 90], [120, 50, 150, 90]], np.float32)
        for b in boxes.astype(int):
            img[b[1]:b[3], b[0]:b[2]] = 230
        cv2.imwrite(os.path.join(str(tmp_path), "images", "s%d.png" % k), img)
        anns.append(Annotation("s%d.png" % k, 200, 160, boxes, np.array([0, 1])))
    return str(tmp_path), anns


def test_detector_kiosk_views_put_the_face_box_on_the_face(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kiosk.train.face_finetune import Sampler

    data, anns = _scenes(tmp_path)
    sp = Sampler(data, anns, seed=1, kiosk_views=1.0)
    sizes, negatives = [], 0
    for n in range(60):
        canvas, gt, ig = sp.sample(n % 2)
        assert canvas.shape == (448, 448, 3) and gt.shape in ((1, 4), (0, 4))
        assert all(0 <= v <= 448 for v in ig.ravel())
        if not len(gt):  # a close-up of no face: a patch's edges are no sign of a face
            negatives += 1
            continue
        x1, y1, x2, y2 = gt[0].astype(int)
        inner = canvas[y1 + 2:y2 - 2, x1 + 2:x2 - 2].astype(np.float32)
        assert inner.size and inner.mean() > 120, (n, gt)  # the bright face, whatever the colour jitter did
        sizes.append(y2 - y1)
    assert min(sizes) < 120 and max(sizes) > 200  # pasted small and close-ups filling the input
    assert 0 < negatives < 15


def test_detector_sampler_without_kiosk_views_draws_as_before(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kiosk.train.face_finetune import Sampler

    data, anns = _scenes(tmp_path)
    a, b = Sampler(data, anns, seed=3), Sampler(data, anns, seed=3, kiosk_views=0.0)
    for n in range(6):
        ca, ga, _ = a.sample(n % 2)
        cb, gb, _ = b.sample(n % 2)
        assert np.array_equal(ca, cb) and np.array_equal(ga, gb)
    assert a.rng.random() == b.rng.random()
