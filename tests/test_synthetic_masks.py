"""The painted-mask augmentation: where the mask goes decides its label, so test the geometry."""

import numpy as np

from kiosk.train.synthetic_masks import CORRECT, INCORRECT, crop_landmarks, mask_polygon, paint_mask

S = 64
FACE = (10.0, 10.0, 54.0, 54.0)
# eyes, nose tip, mouth corners (YuNet order) of a frontal face in the box above
LM = np.array([[24, 24], [40, 24], [32, 34], [26, 44], [38, 44]], np.float32)


def _painted(kind: int, seed: int) -> np.ndarray:
    crop = np.zeros((S, S, 3), np.float32)
    crop[..., 1] = 255.0  # pure green: no mask colour is close to it
    out = paint_mask(crop, LM, FACE, kind, np.random.RandomState(seed))
    return np.abs(out - crop).max(axis=2) > 20  # where the mask was painted


def test_correct_mask_covers_nose_and_mouth_not_eyes() -> None:
    for seed in range(20):
        m = _painted(CORRECT, seed)
        assert m[34, 32] and m[44, 32], "nose tip and mouth are covered"
        assert not m[24, 24] and not m[24, 40], "eyes stay visible"


def test_incorrect_mask_leaves_the_nose_visible() -> None:
    for seed in range(20):
        m = _painted(INCORRECT, seed)
        assert not m[34, 32], "nose tip visible"
        assert m[52, 32], "the chin is covered"
        assert m.sum() > 60, "a real mask, not a sliver"


def test_outline_is_a_simple_polygon_inside_reason() -> None:
    rng = np.random.RandomState(0)
    for kind in (CORRECT, INCORRECT):
        for _ in range(50):
            p = mask_polygon(LM, FACE, kind, rng)
            assert p.shape == (10, 2) and np.isfinite(p).all()
            assert p[:, 1].max() - p[:, 1].min() >= 0.2 * (FACE[3] - FACE[1])


def test_crop_landmarks_follow_the_crop_geometry() -> None:
    box = np.array([100, 200, 140, 260], np.float32)  # 40 x 60 face
    corners = np.array([[100, 200], [140, 260]], np.float32)
    got = crop_landmarks(np.vstack([corners, np.zeros((3, 2), np.float32)]), box, 64, 0.15)[:2]
    m = 64 * 0.15 / 1.3  # the margin inside the crop
    assert np.allclose(got, [[m, m], [64 - m, 64 - m]], atol=1e-4)


def test_dark_face_gets_a_darker_mask_than_a_bright_one() -> None:
    dark, bright = np.full((S, S, 3), 40.0, np.float32), np.full((S, S, 3), 220.0, np.float32)
    a = paint_mask(dark, LM, FACE, CORRECT, np.random.RandomState(3))[44, 32].mean()
    b = paint_mask(bright, LM, FACE, CORRECT, np.random.RandomState(3))[44, 32].mean()
    assert a < b
