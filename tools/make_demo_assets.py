#!/usr/bin/env python3
"""Build the demo face images in ``assets/demo/`` from a public-domain photo.

The photo is scikit-image's ``skimage.data.astronaut()`` (NASA portrait of astronaut Eileen Collins,
public domain, shipped inside the scikit-image wheel). The face and its five landmarks are found
with OpenCV's YuNet detector (``cv2.FaceDetectorYN``; the ONNX file is read here at build time and
never committed), and face masks are drawn from the landmarks:

* ``with_mask`` — the mask covers nose, mouth and chin, up to just under the eyes;
* ``mask_weared_incorrect`` — the same mask pulled down below the nose (nose visible);
* ``without_mask`` — the photo untouched.

``person1`` wears a light-blue pleated surgical mask with white ear loops; ``person2`` is the photo
flipped and colour-graded, wearing a dark cloth mask with a centre seam.

    python tools/make_demo_assets.py --yunet ../shared/models/yunet/yunet_s_640_640.onnx

Needs numpy, opencv-python(-headless) >= 4.5.4 and scikit-image (dev extra). Deterministic.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_YUNET = os.path.join(REPO, "..", "shared", "models", "yunet", "yunet_s_640_640.onnx")
DEFAULT_OUT = os.path.join(REPO, "assets", "demo")

CLASSES = ("with_mask", "mask_weared_incorrect", "without_mask")


# ----------------------------------------------------------------------------------- geometry

@dataclass
class Face:
    """A detected face in image pixels: box (x, y, w, h) and five landmarks
    (right eye, left eye, nose tip, right mouth corner, left mouth corner; as YuNet orders them)."""

    box: np.ndarray
    landmarks: np.ndarray  # (5, 2)
    score: float


def detect_face(bgr: np.ndarray, yunet_path: str) -> Face:
    """The most confident face found by YuNet (upscaled 2x for steadier landmarks)."""
    if not os.path.isfile(yunet_path):
        raise SystemExit(f"YuNet model not found: {yunet_path} (pass --yunet PATH)")
    scale = 2.0
    big = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    h, w = big.shape[:2]
    det = cv2.FaceDetectorYN.create(yunet_path, "", (w, h), 0.6, 0.3, 50)
    _, faces = det.detect(big)
    if faces is None or len(faces) == 0:
        raise SystemExit("YuNet found no face in the source photo")
    f = max(faces, key=lambda r: r[14])
    return Face(box=f[0:4] / scale, landmarks=f[4:14].reshape(5, 2) / scale, score=float(f[14]))


class FaceFrame:
    """Face-aligned coordinates: origin between the eyes, ``u`` along the eye line (image right),
    ``v`` perpendicular to it (down); one unit is the distance between the eyes."""

    def __init__(self, face: Face) -> None:
        lm = face.landmarks
        eye_a, eye_b = lm[0], lm[1]
        if eye_a[0] > eye_b[0]:
            eye_a, eye_b = eye_b, eye_a
        self.origin = (eye_a + eye_b) / 2.0
        ex = eye_b - eye_a
        self.unit = float(np.hypot(*ex))
        self.ex = ex / self.unit
        self.ey = np.array([-self.ex[1], self.ex[0]])
        self.face = face
        self.lm_uv = np.array([self.to_uv(p) for p in lm])
        x, y, w, h = face.box
        self.box_left = self.to_uv((x, y + h / 2))[0]
        self.box_right = self.to_uv((x + w, y + h / 2))[0]
        self.box_bottom = self.to_uv((x + w / 2, y + h))[1]

    def to_uv(self, p: Sequence[float]) -> np.ndarray:
        d = np.asarray(p, dtype=np.float64) - self.origin
        return np.array([d @ self.ex, d @ self.ey]) / self.unit

    def to_xy(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        return self.origin + (uv[..., :1] * self.ex + uv[..., 1:2] * self.ey) * self.unit

    def grid_uv(self, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        dx, dy = xs - self.origin[0], ys - self.origin[1]
        return (dx * self.ex[0] + dy * self.ex[1]) / self.unit, (dx * self.ey[0] + dy * self.ey[1]) / self.unit

    @property
    def nose(self) -> np.ndarray:
        return self.lm_uv[2]

    @property
    def mouth(self) -> np.ndarray:
        return (self.lm_uv[3] + self.lm_uv[4]) / 2.0


def catmull_rom(points: Sequence[Sequence[float]], n: int = 24) -> np.ndarray:
    """An open Catmull-Rom curve through ``points`` (end points repeated)."""
    p = np.asarray(points, dtype=np.float64)
    p = np.vstack([p[:1], p, p[-1:]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        for t in np.linspace(0.0, 1.0, n, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(p[-2])
    return np.array(out)


@dataclass
class MaskShape:
    """A mask outline in face coordinates: ``top`` and ``bottom`` edges run from the left side to
    the right side (u increasing); ``left`` and ``right`` sides run from top to bottom."""

    top: np.ndarray
    right: np.ndarray
    bottom: np.ndarray
    left: np.ndarray

    def outline(self) -> np.ndarray:
        return np.vstack([self.top, self.right, self.bottom[::-1], self.left[::-1]])

    def edge_v(self, u: np.ndarray, which: str) -> np.ndarray:
        c = self.top if which == "top" else self.bottom
        return np.interp(u, c[:, 0], c[:, 1])


def mask_shape(fr: FaceFrame, placement: str, style: str) -> MaskShape:
    """Outline of a mask worn properly (``correct``: up to just under the eyes) or pulled down
    below the nose (``low``). Widths follow the detected face box, the centre follows the nose."""
    left, right = fr.box_left, fr.box_right
    nose_u = fr.nose[0]
    mouth_u = fr.mouth[0]
    chin_v = max(fr.box_bottom, fr.mouth[1] + 0.62)
    cloth = style == "cloth"

    def sx(k: int, frac: float) -> float:
        return (left if k < 0 else right) * frac

    if placement == "correct":
        top_c = 0.20 if not cloth else 0.17
        peak = 0.06 if not cloth else 0.09  # the nose wire bends over the bridge of the nose
        top_pts = [(sx(-1, 0.96), 0.47), (sx(-1, 0.66), 0.36), (nose_u - 0.28, top_c + peak),
                   (nose_u, top_c), (nose_u + 0.28, top_c + peak), (sx(1, 0.66), 0.36), (sx(1, 0.96), 0.47)]
        bottom_c = chin_v + 0.10
        corner_v = 1.28
        bot_pts = [(sx(-1, 0.78), corner_v), (sx(-1, 0.52), bottom_c - 0.13), (mouth_u, bottom_c),
                   (sx(1, 0.52), bottom_c - 0.13), (sx(1, 0.78), corner_v)]
        bulge = [(k, (sx(k, 0.99), 0.86)) for k in (-1, 1)]
    elif placement == "low":
        # Pulled down: the top edge runs under the nostrils, the mask sags under the chin.
        top_c = fr.nose[1] + 0.27
        top_pts = [(sx(-1, 0.90), top_c + 0.20), (sx(-1, 0.60), top_c + 0.08), (nose_u - 0.3, top_c + 0.015),
                   (nose_u, top_c), (nose_u + 0.3, top_c + 0.015), (sx(1, 0.60), top_c + 0.08),
                   (sx(1, 0.90), top_c + 0.20)]
        bottom_c = chin_v + 0.28
        corner_v = 1.45
        bot_pts = [(sx(-1, 0.72), corner_v), (sx(-1, 0.48), bottom_c - 0.12), (mouth_u, bottom_c),
                   (sx(1, 0.48), bottom_c - 0.12), (sx(1, 0.72), corner_v)]
        bulge = [(k, (sx(k, 0.90), (top_c + 0.2 + corner_v) / 2)) for k in (-1, 1)]
    else:
        raise ValueError(placement)
    top = catmull_rom(top_pts)
    bottom = catmull_rom(bot_pts)
    sides = {}
    for k, mid in bulge:
        a = top[0] if k < 0 else top[-1]
        b = bottom[0] if k < 0 else bottom[-1]
        sides[k] = catmull_rom([a, mid, b], n=16)
    return MaskShape(top, sides[1], bottom, sides[-1])


# ----------------------------------------------------------------------------------- rendering

@dataclass
class MaskStyle:
    name: str
    kind: str  # "surgical" or "cloth"
    color: Tuple[int, int, int]  # RGB
    loop_color: Tuple[int, int, int]
    pleats: int = 3


SURGICAL_BLUE = MaskStyle("surgical light blue", "surgical", (140, 192, 218), (232, 234, 236))
CLOTH_BLACK = MaskStyle("black cloth", "cloth", (44, 45, 52), (30, 30, 34), pleats=0)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _gauss(x: np.ndarray, s: float) -> np.ndarray:
    return np.exp(-0.5 * (x / s) ** 2)


def _poly_alpha(h: int, w: int, pts_xy: np.ndarray, ss: int = 4) -> np.ndarray:
    """Anti-aliased coverage of a polygon (supersampled ``ss`` times)."""
    big = np.zeros((h * ss, w * ss), np.uint8)
    cv2.fillPoly(big, [np.round(pts_xy * ss).astype(np.int32)], 255, lineType=cv2.LINE_8)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0


def _fabric_noise(h: int, w: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    fine = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 0.6)
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (h, w)), (0, 0), 4.0)
    blotch /= blotch.std() + 1e-9
    if kind == "cloth":
        ys, xs = np.mgrid[0:h, 0:w]
        weave = 0.5 * (np.sin(xs * 2.1) * np.sin(ys * 2.1))
        return 0.035 * fine + 0.02 * blotch + 0.02 * weave
    return 0.03 * fine + 0.02 * blotch


def draw_mask(rgb: np.ndarray, fr: FaceFrame, placement: str, style: MaskStyle, seed: int = 0) -> np.ndarray:
    """Return a copy of ``rgb`` (float RGB 0..1) with a mask drawn on the face."""
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    shape = mask_shape(fr, placement, style.kind)
    outline_xy = fr.to_xy(shape.outline())
    alpha = _poly_alpha(h, w, outline_xy)
    u, v = fr.grid_uv(h, w)

    # Normalised mask coordinates: s across (-1 left side .. 1 right side), t down (0 top .. 1 bottom).
    u_c = fr.nose[0] * 0.6 + fr.mouth[0] * 0.4
    u_l = np.interp(v, shape.left[:, 1], shape.left[:, 0])
    u_r = np.interp(v, shape.right[:, 1], shape.right[:, 0])
    s = np.where(u < u_c, (u - u_c) / (u_c - u_l), (u - u_c) / (u_r - u_c))
    s = np.clip(s, -1.2, 1.2)
    v_top = shape.edge_v(u, "top")
    v_bot = shape.edge_v(u, "bottom")
    t = (v - v_top) / np.maximum(v_bot - v_top, 1e-3)

    # --- shading: a surface wrapping round the face, lit like the face itself -------------
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    skin = cv2.GaussianBlur(lum, (0, 0), fr.unit * 0.45)
    ref = float(np.median(skin[alpha > 0.5])) if np.any(alpha > 0.5) else float(skin.mean())
    light = np.clip(skin / max(ref, 1e-3), 0.7, 1.25)
    # Side-to-side light balance from the cheeks (which side of the face is brighter).
    cheeks = []
    for k in (-1, 1):
        near = (np.abs(u - 0.55 * k) < 0.18) & (np.abs(v - 0.55) < 0.18)
        cheeks.append(float(lum[near].mean()) if np.any(near) else 0.5)
    tilt = (cheeks[1] - cheeks[0]) / max(cheeks[0] + cheeks[1], 1e-3)
    wrap = np.sqrt(np.clip(1.0 - 0.75 * np.abs(s) ** 2.2, 0.05, 1.0))
    shade = 0.76 + 0.30 * wrap
    shade *= 1.0 + 1.5 * tilt * np.clip(s, -1, 1)
    shade *= 0.55 + 0.45 * light
    if placement == "correct":
        # Over the nose the surface faces the camera; below the chin it turns away.
        shade *= 1.0 + 0.07 * _gauss(s, 0.35) * _gauss(t - 0.30, 0.22)
    shade *= 1.0 - 0.30 * _smoothstep(0.78, 1.02, t) * (0.6 + 0.4 * _gauss(s, 0.6))
    shade *= 1.0 - 0.06 * _smoothstep(0.5, 1.0, np.abs(s))

    unit_px = fr.unit
    if style.kind == "surgical":
        # Pleats: three horizontal folds, tight at the sides, opened out over nose and chin.
        for k in range(style.pleats):
            t_side = 0.30 + 0.20 * k
            t_mid = 0.22 + 0.27 * k
            tk = t_mid + (t_side - t_mid) * np.clip(np.abs(s), 0, 1) ** 1.5
            dt = (t - tk) * (v_bot - v_top) * unit_px  # pixels below the fold line
            amp = 0.45 + 0.55 * np.clip(np.abs(s), 0, 1) ** 1.2
            shade *= 1.0 + amp * (0.12 * _gauss(dt + 1.2, 1.1) - 0.24 * _gauss(dt - 1.6, 1.4)
                                  - 0.05 * _gauss(dt - 4.0, 3.0))
        # Heat-sealed bands along the sides and the nose-wire channel along the top.
        d_side = np.minimum(u - u_l, u_r - u) * unit_px
        band = _smoothstep(5.5, 4.0, d_side)
        stitch = 0.5 + 0.5 * np.sin(v * unit_px * 1.9)
        shade *= 1.0 + band * (0.05 - 0.05 * stitch)
        shade *= 1.0 - 0.10 * _gauss(d_side - 5.0, 0.8)
        d_top = t * (v_bot - v_top) * unit_px
        wire = _gauss(s, 0.22) * _gauss(d_top - 3.0, 1.3)
        shade *= 1.0 + 0.10 * wire - 0.08 * _gauss(s, 0.22) * _gauss(d_top - 5.5, 1.2)
        shade *= 1.0 - 0.07 * _gauss(d_top - 6.0, 1.0) * (1 - _gauss(s, 0.22))
        d_bot = (1.0 - t) * (v_bot - v_top) * unit_px
        shade *= 1.0 - 0.08 * _gauss(d_bot - 4.5, 1.0)
    else:
        # Cloth: a vertical centre seam with a ridge, contoured cheeks, a hemmed edge.
        d_seam = (u - u_c) * unit_px
        shade *= 1.0 - 0.35 * _gauss(d_seam, 0.9) + 0.22 * _gauss(d_seam + 2.2, 1.4)
        shade *= 1.0 + 0.30 * _gauss(s + 0.35, 0.25) * _gauss(t - 0.45, 0.35)
        shade *= 1.0 + 0.18 * _gauss(s - 0.35, 0.25) * _gauss(t - 0.45, 0.35)
        d_edge = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
        shade *= 1.0 + 0.18 * _gauss(d_edge - 2.5, 1.0) - 0.15 * _gauss(d_edge - 4.5, 1.0)

    shade *= 1.0 + _fabric_noise(h, w, rng, style.kind)
    base = np.array(style.color, dtype=np.float64) / 255.0
    # Light: multiply in linear light, then back to display values.
    lin = base ** 2.2
    mask_rgb = np.clip((lin[None, None, :] * (shade[..., None] ** 2.2)) ** (1 / 2.2), 0, 1)
    # Slight darkening right at the rim (the fabric's thickness).
    rim = cv2.GaussianBlur(alpha, (0, 0), 0.8)
    mask_rgb *= (0.82 + 0.18 * np.clip((rim - 0.5) * 2.0, 0, 1))[..., None]

    out = rgb.copy()
    # Contact shadow of the mask on the skin and neck (light from the front, slightly above).
    shadow = cv2.GaussianBlur(np.roll(alpha, int(round(0.05 * unit_px)), axis=0), (0, 0), 0.06 * unit_px)
    out *= (1.0 - 0.40 * shadow * (1.0 - alpha))[..., None]
    out = out * (1.0 - alpha[..., None]) + mask_rgb * alpha[..., None]
    out = draw_ear_loops(out, fr, shape, style)
    return out


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def draw_ear_loops(rgb: np.ndarray, fr: FaceFrame, shape: MaskShape, style: MaskStyle) -> np.ndarray:
    """Elastic loops from the mask's four corners back to the ears (just outside the cheek line),
    anti-aliased, each with a faint shadow on the skin."""
    h, w = rgb.shape[:2]
    ss = 4
    core = np.zeros((h * ss, w * ss), np.uint8)
    shade = np.zeros((h * ss, w * ss), np.uint8)
    thick = max(1.0, (0.045 if style.kind == "cloth" else 0.032) * fr.unit)
    for k in (-1, 1):
        side = shape.left if k < 0 else shape.right
        c_top, c_bot = side[1], side[-2]  # just inside the corners, where the cord is welded
        edge = fr.box_left if k < 0 else fr.box_right
        ear_top = np.array([edge * 1.10, 0.26])  # top of the ear, at eye level (behind the hair)
        ear_bot = np.array([edge * 1.12, 0.70])  # behind the ear lobe
        for a, b, bend in ((c_top, ear_top, np.array([0.06 * k, 0.04])),
                           (c_bot, ear_bot, np.array([0.14 * k, 0.08]))):
            ctrl = (a + b) / 2 + bend
            curve = fr.to_xy(_bezier(np.asarray(a), ctrl, b, n=60))
            # The cord disappears behind the ear / hair: fade the last part out.
            fade = np.clip((1.0 - np.linspace(0, 1, len(curve))) / 0.35, 0, 1)
            for i in range(len(curve) - 1):
                p, q = curve[i] * ss, curve[i + 1] * ss
                val = int(round(255 * fade[i]))
                if val == 0:
                    break
                pi, qi = tuple(np.round(p).astype(int)), tuple(np.round(q).astype(int))
                off = np.array([0.8, 1.2]) * ss
                cv2.line(shade, tuple(np.round(p + off).astype(int)), tuple(np.round(q + off).astype(int)),
                         val, int(round((thick + 0.6) * ss)), cv2.LINE_AA)
                cv2.line(core, pi, qi, val, int(round(thick * ss)), cv2.LINE_AA)
    core_a = cv2.resize(core, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
    shade_a = cv2.GaussianBlur(cv2.resize(shade, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0,
                               (0, 0), 0.7)
    out = rgb * (1.0 - 0.30 * shade_a[..., None])
    col = np.array(style.loop_color, dtype=np.float64) / 255.0
    # Lit like the face around it, so a white cord is not brighter than white paper in that light.
    lum = cv2.GaussianBlur(rgb @ np.array([0.299, 0.587, 0.114]), (0, 0), fr.unit * 0.3)
    light = np.clip(0.55 + 0.6 * lum, 0.6, 1.05)[..., None]
    cord = col[None, None, :] * light
    return out * (1.0 - core_a[..., None]) + cord * core_a[..., None]


# ----------------------------------------------------------------------------------- people

def colour_shift(rgb: np.ndarray) -> np.ndarray:
    """A different-looking 'person': warmer, darker skin tone, cooler background (LAB shift)."""
    lab = cv2.cvtColor((rgb * 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float64)
    lab[..., 0] = 255.0 * (lab[..., 0] / 255.0) ** 1.12
    lab[..., 1] += 5.0
    lab[..., 2] += 9.0
    out = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return out.astype(np.float64) / 255.0


def recolour_suit(rgb: np.ndarray, face: Face, hue_shift: int = 95) -> np.ndarray:
    """Turn the saturated orange clothing below the chin another colour (feathered)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hue, sat = hsv[..., 0].astype(np.int32), hsv[..., 1]
    ys = np.arange(rgb.shape[0])[:, None]
    below = ys > face.box[1] + face.box[3] * 1.25
    sel = (((hue < 22) | (hue > 170)) & (sat > 110) & below).astype(np.float64)
    sel = cv2.GaussianBlur(sel, (0, 0), 1.5)
    shifted = hsv.copy()
    shifted[..., 0] = ((hue + hue_shift) % 180).astype(np.uint8)
    shifted[..., 1] = (sat * 0.8).astype(np.uint8)
    alt = cv2.cvtColor(shifted, cv2.COLOR_HSV2RGB).astype(np.float64)
    return np.clip(rgb * (1 - sel[..., None]) + alt * sel[..., None], 0, 255).astype(np.uint8)


def head_crop(face: Face, img_w: int, img_h: int, out_w: int, out_h: int) -> Tuple[int, int, int, int]:
    """A head-and-shoulders window (x, y, w, h) around the face, kept inside the image."""
    x, y, w, h = face.box
    cw = min(img_w, 2.8 * w)
    ch = min(img_h, cw * out_h / out_w)
    cw = ch * out_w / out_h
    cx = x + w / 2
    top = y - 0.42 * h
    x0 = int(round(np.clip(cx - cw / 2, 0, img_w - cw)))
    y0 = int(round(np.clip(top, 0, img_h - ch)))
    return x0, y0, int(round(cw)), int(round(ch))


def make_person(src_rgb: np.ndarray, yunet: str, style: MaskStyle, size: Tuple[int, int],
                seed: int, restyle: bool = False) -> Dict[str, np.ndarray]:
    """The three classes for one person, as uint8 RGB images of ``size`` (w, h). ``restyle``
    makes a different-looking person: colour-graded, with the clothing recoloured."""
    out_w, out_h = size
    bgr = cv2.cvtColor(src_rgb, cv2.COLOR_RGB2BGR)
    face = detect_face(bgr, yunet)
    if restyle:
        src_rgb = recolour_suit(src_rgb, face)
        src_rgb = (colour_shift(src_rgb.astype(np.float64) / 255.0) * 255).astype(np.uint8)
    x0, y0, cw, ch = head_crop(face, src_rgb.shape[1], src_rgb.shape[0], out_w, out_h)
    crop = cv2.resize(src_rgb[y0:y0 + ch, x0:x0 + cw], (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
    sx, sy = out_w / float(cw), out_h / float(ch)
    face_c = Face(box=np.array([(face.box[0] - x0) * sx, (face.box[1] - y0) * sy,
                                face.box[2] * sx, face.box[3] * sy]),
                  landmarks=(face.landmarks - [x0, y0]) * [sx, sy], score=face.score)
    fr = FaceFrame(face_c)
    base = crop.astype(np.float64) / 255.0
    out = {"without_mask": base}
    out["with_mask"] = draw_mask(base, fr, "correct", style, seed)
    out["mask_weared_incorrect"] = draw_mask(base, fr, "low", style, seed + 1)
    return {k: np.clip(np.round(v * 255), 0, 255).astype(np.uint8) for k, v in out.items()}


def contact_sheet(images: List[np.ndarray]) -> np.ndarray:
    return np.hstack(images)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--yunet", default=DEFAULT_YUNET, help="YuNet ONNX model (read at build time only)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default assets/demo)")
    ap.add_argument("--size", default="320x360", help="output size WxH (default 320x360)")
    ap.add_argument("--sheet", default=None, help="also write a contact sheet PNG here (for a look)")
    args = ap.parse_args(argv)
    try:
        from skimage import data
    except ImportError:
        print("scikit-image is needed: pip install scikit-image", file=sys.stderr)
        return 2
    out_w, out_h = (int(x) for x in args.size.lower().split("x"))
    photo = data.astronaut()  # RGB uint8, 512x512, public domain (NASA)
    people = {
        "person1": (photo, SURGICAL_BLUE, 1, False),
        "person2": (photo[:, ::-1], CLOTH_BLACK, 11, True),  # mirrored, recoloured, another mask
    }
    os.makedirs(args.out, exist_ok=True)
    sheet = []
    total = 0
    for who, (img, style, seed, restyle) in people.items():
        images = make_person(np.ascontiguousarray(img), args.yunet, style, (out_w, out_h), seed, restyle)
        for cls in CLASSES:
            path = os.path.join(args.out, f"{who}_{cls}.png")
            cv2.imwrite(path, cv2.cvtColor(images[cls], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            total += os.path.getsize(path)
            print(f"wrote {path} ({os.path.getsize(path) // 1024} KiB)")
            sheet.append(images[cls])
    if args.sheet:
        row = [np.hstack(sheet[i:i + 3]) for i in range(0, len(sheet), 3)]
        cv2.imwrite(args.sheet, cv2.cvtColor(np.vstack(row), cv2.COLOR_RGB2BGR))
    print(f"total {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
