"""Synthetic masks painted on unmasked faces: more examples of the rare ``mask_weared_incorrect`` class.

The dataset has 67 training boxes of a mask worn below the nose against 1690 worn correctly, and what
separates the two is a few pixels around the nose. Painting a mask onto a ``without_mask`` face gives
a matched pair from the same face: one worn correctly (over the nose bridge) and one worn wrong (below
the nose, or on the chin). The idea is the one of MaskTheFace (Anwar & Raychowdhury, 2020); this is a
small, dependency-free version for 64 px crops, placed by the face detector's five landmarks.

Used by :mod:`kiosk.train.mask_classifier` on training crops only; validation and test never see it.
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

CORRECT = 1  # paint over the nose bridge, down to the chin -> with_mask
INCORRECT = 2  # paint below the nose (or on the chin only) -> mask_weared_incorrect

# BGR colours of common masks: surgical blue and green, white, black, grey, navy, pink
PALETTE = np.array(
    [[225, 195, 145], [200, 215, 170], [235, 235, 235], [45, 45, 45], [150, 150, 150], [95, 55, 35], [200, 180, 235]],
    np.float32,
)
_SUPER = 4  # polygons are drawn at 4x and averaged down: anti-aliased edges


def crop_landmarks(landmarks: np.ndarray, box: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Landmarks (5,2) in frame pixels -> pixels of the crop that ``crop_boxes`` makes of ``box``."""
    x1, y1, x2, y2 = [float(v) for v in box]
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    x0, y0 = x1 - margin * bw, y1 - margin * bh
    sx, sy = size / (bw * (1 + 2 * margin)), size / (bh * (1 + 2 * margin))
    return (np.asarray(landmarks, np.float32) - [x0, y0]) * [sx, sy]


def mask_polygon(lm: np.ndarray, face: Tuple[float, float, float, float], kind: int, rng: np.random.RandomState) -> np.ndarray:
    """Outline (K,2) of a mask on a face. ``lm``: eyes, nose tip, mouth corners (YuNet order) in crop
    pixels; ``face``: the face box (x1, y1, x2, y2) in crop pixels."""
    fx1, fy1, fx2, fy2 = face
    fw, fh = fx2 - fx1, fy2 - fy1
    eye_y = float(lm[:2, 1].mean())
    nose_x, nose_y = float(lm[2, 0]), float(lm[2, 1])
    mouth_y = float(lm[3:, 1].mean())
    bottom = fy2 + rng.uniform(-0.02, 0.08) * fh
    if kind == CORRECT:
        top = eye_y + rng.uniform(0.35, 0.65) * (nose_y - eye_y)
    elif rng.rand() < 0.8:  # below the nose: the usual way of wearing it wrong
        top = nose_y + rng.uniform(0.3, 0.7) * max(mouth_y - nose_y, 1.0)
    else:  # pulled down onto the chin
        top = mouth_y + rng.uniform(0.2, 0.5) * max(bottom - mouth_y, 1.0)
    top = min(top, bottom - 0.22 * fh)  # never a sliver
    half = 0.5 * fw * rng.uniform(0.85, 1.05)
    cx = 0.5 * (nose_x + 0.5 * (fx1 + fx2))
    lift = (0.06 if kind == CORRECT else 0.02) * fh  # the wire over the nose lifts the middle of the top edge
    jaw = max(bottom - rng.uniform(0.18, 0.3) * fh, top + 0.12 * fh)
    side = min(top + 0.1 * fh, jaw)  # keeps the outline from crossing itself
    pts = [
        (cx - half, side), (cx - 0.5 * half, top + 0.3 * lift), (cx, top - lift), (cx + 0.5 * half, top + 0.3 * lift),
        (cx + half, side), (cx + 0.95 * half, jaw), (cx + 0.55 * half, bottom - 0.05 * fh), (cx, bottom),
        (cx - 0.55 * half, bottom - 0.05 * fh), (cx - 0.95 * half, jaw),
    ]
    return np.array(pts, np.float32)


def paint_mask(crop: np.ndarray, lm: np.ndarray, face: Tuple[float, float, float, float], kind: int,
               rng: np.random.RandomState) -> np.ndarray:
    """A copy of ``crop`` (S,S,3 float32 BGR 0..255) with a mask painted on: a coloured shape with
    shading, pleats and noise, lit like the face, with soft edges."""
    s = crop.shape[0]
    poly = mask_polygon(lm, face, kind, rng)
    alpha = np.zeros((s * _SUPER, s * _SUPER), np.uint8)
    cv2.fillPoly(alpha, [np.round(poly * _SUPER).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    a = cv2.resize(alpha, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 0.9))[..., None]
    if a.max() <= 0:
        return crop.copy()
    colour = PALETTE[rng.randint(len(PALETTE))] * rng.uniform(0.85, 1.1)
    inside = a[..., 0] > 0.5
    light = float(crop[inside].mean()) / 128.0 if inside.any() else 1.0
    colour = colour * np.clip(light, 0.45, 1.3) ** 0.6
    yy = np.linspace(0, 1, s, dtype=np.float32)[:, None, None]
    xx = np.linspace(-1, 1, s, dtype=np.float32)[None, :, None]
    shade = 1.0 - rng.uniform(0.0, 0.25) * yy - rng.uniform(0.0, 0.15) * xx ** 2 + rng.uniform(-0.1, 0.1) * xx
    tex = colour[None, None, :] * shade
    if rng.rand() < 0.5:  # pleats of a surgical mask
        top, bot = float(poly[:, 1].min()), float(poly[:, 1].max())
        for f in (0.35, 0.55, 0.75):
            y = top + f * (bot - top)
            band = np.exp(-0.5 * ((np.arange(s, dtype=np.float32) - y) / 0.6) ** 2)[:, None, None]
            tex = tex * (1 - 0.25 * band)
    tex = tex + rng.normal(0, 3.0, tex.shape).astype(np.float32)
    return np.clip(crop * (1 - a) + tex * a, 0, 255).astype(np.float32)
