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


# Mask styles (``paint_mask(styles=True)``, issue 12). The dataset's masks are mostly pleated surgical ones; the
# kiosk also meets folded KN95 / N95 masks with a centre seam, moulded cup respirators (often with a valve) and
# printed cloth masks, and read some of them as "incorrect". A style changes the outline and the surface, never
# where the top edge sits, so "over the nose" vs "below the nose" stays the only difference between the classes.
STYLES = ("surgical", "kn95", "cup", "cloth")
STYLE_P = (0.3, 0.25, 0.15, 0.3)


def mask_polygon(lm: np.ndarray, face: Tuple[float, float, float, float], kind: int, rng: np.random.RandomState,
                 style: str = "surgical") -> np.ndarray:
    """Outline (K,2) of a mask on a face. ``lm``: eyes, nose tip, mouth corners (YuNet order) in crop
    pixels; ``face``: the face box (x1, y1, x2, y2) in crop pixels; ``style``: one of :data:`STYLES`."""
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
    if style == "cup":  # a moulded dome: an ellipse from the top edge to below the chin
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        cy, ry = 0.5 * (top - lift + bottom), 0.5 * (bottom - top + lift)
        return np.stack([cx + 0.92 * half * np.cos(t), cy + ry * np.sin(t)], 1).astype(np.float32)
    if style == "kn95":  # folded: a peak over the nose, a point under the chin, straighter sides
        lift, bottom, jaw = 2.0 * lift, bottom + 0.04 * fh, jaw + 0.05 * fh
    pts = [
        (cx - half, side), (cx - 0.5 * half, top + 0.3 * lift), (cx, top - lift), (cx + 0.5 * half, top + 0.3 * lift),
        (cx + half, side), (cx + 0.95 * half, jaw), (cx + 0.55 * half, bottom - 0.05 * fh), (cx, bottom),
        (cx - 0.55 * half, bottom - 0.05 * fh), (cx - 0.95 * half, jaw),
    ]
    return np.array(pts, np.float32)


def _line_alpha(s: int, pts: np.ndarray, width: float) -> np.ndarray:
    """(S,S,1) anti-aliased alpha of a polyline through ``pts`` (crop pixels)."""
    a = np.zeros((s * _SUPER, s * _SUPER), np.uint8)
    cv2.polylines(a, [np.round(np.asarray(pts) * _SUPER).astype(np.int32)], False, 255,
                  max(1, int(round(width * _SUPER))), lineType=cv2.LINE_AA)
    return (cv2.resize(a, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)[..., None]


def _style_surface(tex: np.ndarray, poly: np.ndarray, style: str, colour: np.ndarray,
                   rng: np.random.RandomState) -> np.ndarray:
    """The surface of a styled mask on its shaded colour ``tex`` (S,S,3): a KN95's seam and fold, a cup's
    dome and valve, a cloth mask's print."""
    s = tex.shape[0]
    x1, y1 = poly.min(0)
    x2, y2 = poly.max(0)
    cx, w, h = 0.5 * (x1 + x2), x2 - x1, y2 - y1
    if style == "kn95":
        seam = _line_alpha(s, [(cx, y1), (cx + rng.uniform(-0.03, 0.03) * w, y2)], max(0.6, 0.012 * s))
        fold_y = y1 + rng.uniform(0.45, 0.6) * h
        fold = _line_alpha(s, [(x1 + 0.1 * w, fold_y + 0.05 * h), (cx, fold_y), (x2 - 0.1 * w, fold_y + 0.05 * h)],
                           max(0.5, 0.008 * s))
        tex = tex * (1 - 0.35 * seam) * (1 - 0.2 * fold)
    elif style == "cup":
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        r = np.sqrt(((xx - cx) / max(0.5 * w, 1)) ** 2 + ((yy - 0.5 * (y1 + y2)) / max(0.5 * h, 1)) ** 2)
        tex = tex * (1.08 - 0.3 * np.clip(r, 0, 1) ** 2)[..., None]  # a dome: lit in the middle
        if rng.rand() < 0.6:  # an exhalation valve on one side
            vx = cx + rng.choice([-1, 1]) * rng.uniform(0.15, 0.3) * w
            v = np.zeros((s, s), np.float32)
            cv2.circle(v, (int(round(vx)), int(round(y1 + 0.6 * h))), max(1, int(0.12 * w)), 1.0, -1)
            v = cv2.GaussianBlur(v, (3, 3), 0)[..., None]
            tex = tex * (1 - v) + (colour * rng.uniform(0.3, 0.8)) * v
    elif style == "cloth":
        ink = np.float32(255.0) - colour if rng.rand() < 0.7 else rng.uniform(0, 255, 3).astype(np.float32)
        p = np.zeros((s, s), np.float32)
        kind = rng.randint(3)
        if kind == 0:  # dots
            for _ in range(rng.randint(6, 20)):
                cv2.circle(p, (int(rng.uniform(x1, x2)), int(rng.uniform(y1, y2))), max(1, int(rng.uniform(0.02, 0.05) * s)),
                           1.0, -1)
        elif kind == 1:  # stripes
            step = max(2, int(rng.uniform(0.06, 0.12) * s))
            for y in range(int(y1), int(y2), step):
                cv2.line(p, (int(x1), y), (int(x2), y + int(rng.uniform(-2, 2))), 1.0, max(1, step // 3))
        else:  # a print in the middle (a cross, a logo)
            c, r = (int(cx), int(y1 + 0.55 * h)), max(2, int(0.15 * w))
            cv2.line(p, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), 1.0, max(1, r // 3))
            cv2.line(p, (c[0] - r, c[1] + r), (c[0] + r, c[1] - r), 1.0, max(1, r // 3))
        p = cv2.GaussianBlur(p, (3, 3), 0)[..., None]
        tex = tex * (1 - p) + ink * p
    return tex


def _ear_loops(s: int, poly: np.ndarray, lm: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """(S,S,1) alpha of the two ear loops: from the mask's upper corners back towards the ears."""
    x1, x2 = float(poly[:, 0].min()), float(poly[:, 0].max())
    top = float(poly[:, 1].min())
    ear_y = float(lm[:2, 1].mean()) + rng.uniform(0.0, 0.25) * (float(poly[:, 1].max()) - top)
    a = np.zeros((s, s, 1), np.float32)
    for x, out in ((x1, -1), (x2, 1)):
        y0 = top + rng.uniform(0.1, 0.3) * (float(poly[:, 1].max()) - top)
        a = np.maximum(a, _line_alpha(s, [(x, y0), (x + out * rng.uniform(0.06, 0.14) * s, ear_y)], max(0.5, 0.012 * s)))
    return a


def paint_mask(crop: np.ndarray, lm: np.ndarray, face: Tuple[float, float, float, float], kind: int,
               rng: np.random.RandomState, styles: bool = False) -> np.ndarray:
    """A copy of ``crop`` (S,S,3 float32 BGR 0..255) with a mask painted on: a coloured shape with
    shading, pleats and noise, lit like the face, with soft edges. ``styles``: one of :data:`STYLES` at random
    (off: the pleated mask only, drawing exactly the random numbers it always drew)."""
    s = crop.shape[0]
    style = str(rng.choice(STYLES, p=STYLE_P)) if styles else "surgical"
    poly = mask_polygon(lm, face, kind, rng, style)
    alpha = np.zeros((s * _SUPER, s * _SUPER), np.uint8)
    cv2.fillPoly(alpha, [np.round(poly * _SUPER).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    a = cv2.resize(alpha, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 0.9))[..., None]
    if a.max() <= 0:
        return crop.copy()
    colour = PALETTE[rng.randint(len(PALETTE))] * rng.uniform(0.85, 1.1)
    if style == "cloth" and rng.rand() < 0.6:  # any colour
        colour = rng.uniform(20, 240, 3).astype(np.float32)
    elif style == "cup":
        colour = np.float32(rng.uniform(190, 245)) + rng.uniform(-8, 8, 3).astype(np.float32)  # white / light grey
    inside = a[..., 0] > 0.5
    light = float(crop[inside].mean()) / 128.0 if inside.any() else 1.0
    colour = colour * np.clip(light, 0.45, 1.3) ** 0.6
    yy = np.linspace(0, 1, s, dtype=np.float32)[:, None, None]
    xx = np.linspace(-1, 1, s, dtype=np.float32)[None, :, None]
    shade = 1.0 - rng.uniform(0.0, 0.25) * yy - rng.uniform(0.0, 0.15) * xx ** 2 + rng.uniform(-0.1, 0.1) * xx
    tex = colour[None, None, :] * shade
    if style != "surgical":
        tex = _style_surface(tex, poly, style, colour, rng)
    elif rng.rand() < 0.5:  # pleats of a surgical mask
        top, bot = float(poly[:, 1].min()), float(poly[:, 1].max())
        for f in (0.35, 0.55, 0.75):
            y = top + f * (bot - top)
            band = np.exp(-0.5 * ((np.arange(s, dtype=np.float32) - y) / 0.6) ** 2)[:, None, None]
            tex = tex * (1 - 0.25 * band)
    tex = tex + rng.normal(0, 3.0, tex.shape).astype(np.float32)
    out = crop * (1 - a) + tex * a
    if styles and rng.rand() < 0.5:
        loops = _ear_loops(s, poly, lm, rng) * (1 - a)
        out = out * (1 - loops) + colour * rng.uniform(0.7, 1.0) * loops
    return np.clip(out, 0, 255).astype(np.float32)


# ------------------------------------------------------------------------- occluders (issue 12)
# Face geometry as fractions of the face box (the detector's face-tight box), used where a crop has no
# landmarks: the eye line and the mouth of a frontal face.
EYE_BAND = (0.28, 0.48)  # top, bottom of a sunglasses band
MOUTH_REGION = (0.58, 0.98)  # top, bottom of a hand over the mouth


def paint_sunglasses(crop: np.ndarray, face: Tuple[float, float, float, float], rng: np.random.RandomState) -> np.ndarray:
    """A dark, slightly glossy band over the eyes of a (S,S,3) float crop (0..255, BGR); label unchanged:
    sunglasses say nothing about the mask."""
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    top = y1 + h * (EYE_BAND[0] + rng.uniform(-0.04, 0.04))
    bot = y1 + h * (EYE_BAND[1] + rng.uniform(-0.04, 0.04))
    cy, ry = (top + bot) / 2, (bot - top) / 2
    alpha = np.zeros(crop.shape[:2], np.float32)
    for side in (-1, 1):  # two lenses, joined by a bridge
        cx = (x1 + x2) / 2 + side * w * rng.uniform(0.18, 0.24)
        cv2.ellipse(alpha, (int(round(cx * _SUPER)), int(round(cy * _SUPER))),
                    (int(w * 0.17 * _SUPER), int(ry * _SUPER)), 0, 0, 360, 1.0, -1, shift=2)
    cv2.line(alpha, (int((x1 + w * 0.4) * _SUPER), int(cy * _SUPER)), (int((x1 + w * 0.6) * _SUPER), int(cy * _SUPER)),
             1.0, max(1, int(h * 0.03)), shift=2)  # thickness is not shifted
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None]
    lens = np.float32(rng.uniform(10, 60)) + rng.uniform(0, 25, 3).astype(np.float32)
    return crop * (1 - alpha) + lens * alpha


def paint_hand(crop: np.ndarray, face: Tuple[float, float, float, float], rng: np.random.RandomState) -> np.ndarray:
    """A skin-coloured blob (palm and fingers, the face's own skin tone from its cheeks) over the mouth of a
    (S,S,3) float crop: a hand is not a mask, so the label stays ``without_mask``."""
    x1, y1, x2, y2 = face
    w, h = x2 - x1, y2 - y1
    cheek = crop[int(y1 + h * 0.45):int(y1 + h * 0.6), int(x1 + w * 0.15):int(x2 - w * 0.15)]
    skin = cheek.reshape(-1, 3).mean(0) if cheek.size else np.array([120, 150, 190], np.float32)
    skin = skin * rng.uniform(0.85, 1.15)
    top = y1 + h * (MOUTH_REGION[0] + rng.uniform(-0.05, 0.05))
    bot = y1 + h * MOUTH_REGION[1]
    cx = (x1 + x2) / 2 + w * rng.uniform(-0.1, 0.1)
    alpha = np.zeros(crop.shape[:2], np.float32)
    s = _SUPER
    cv2.ellipse(alpha, (int(cx * s), int((top + bot) / 2 * s)), (int(w * rng.uniform(0.22, 0.32) * s),
                int((bot - top) / 2 * s)), float(rng.uniform(-20, 20)), 0, 360, 1.0, -1, shift=2)
    for k in range(4):  # fingers reaching sideways across the cheek
        fy = top + (bot - top) * (0.15 + 0.2 * k)
        cv2.line(alpha, (int(cx * s), int(fy * s)), (int((cx + rng.choice([-1, 1]) * w * 0.35) * s), int(fy * s)),
                 1.0, max(1, int(h * 0.07)), shift=2)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None]
    shade = np.linspace(1.1, 0.85, crop.shape[0], dtype=np.float32)[:, None, None]  # lit from above
    return np.clip(crop * (1 - alpha) + skin * shade * alpha, 0, 255)


def paint_chin_band(crop: np.ndarray, face: Tuple[float, float, float, float], rng: np.random.RandomState) -> np.ndarray:
    """A flat band of one colour (a collar, a wall, a table edge) across the crop below the chin; label
    unchanged. Unmasked faces above such a band were read as "incorrect" (issue 12)."""
    y2 = face[3]
    top = int(round(y2 - (face[3] - face[1]) * rng.uniform(-0.02, 0.08)))
    out = crop.copy()
    out[max(top, 0):] = rng.uniform(20, 235, 3).astype(np.float32)
    return out
