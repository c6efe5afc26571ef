"""``dabai-qr-photos-v1``: a seeded synthetic set of camera-like photos of pass QR codes, and its benchmark.

Each sample is a 640x480 BGR frame of a scene (a textured background; a printed card, or a phone with a bezel and
a lit screen) holding a pass-shaped QR code (``DABAI1.`` + 140 base64url characters, error level M, version 7)
under one realistic degradation or a combination of them:

==============  ======================================================================================
category        what the camera sees
==============  ======================================================================================
tilt            card or phone tilted 28-52 degrees out of plane (perspective), any in-plane rotation
motion_blur     linear motion blur 3-6.5 px at a random angle (hand movement)
defocus         disk blur of radius 0.45-0.75 module (code held too close / autofocus hunting)
glare           a saturated specular blob over part of the code
small           module size 1.5-2.6 px (code held far away)
low_contrast    faded print / dim exposure: 11-28 % ink contrast plus sensor noise
phone           emissive screen: gamma, bloom, moire banding and pixel grid
phone_dark      phone in dark mode: light modules on a dark screen (inverted code)
noise_jpeg      strong sensor noise (sigma 12-22) and JPEG quality 8-25
uneven_light    a hard shadow edge or strong light fall-off across the code
combo           two or three of the above, each a little milder
==============  ======================================================================================

Every frame also gets the camera's own optics blur, sensor noise and JPEG compression.

``stream`` mode renders each sample as a burst of consecutive frames with small changes in pose, blur, noise,
glare position and exposure, as a live camera gives them while a resident holds up a pass.

The set is defined by this code and its seed: the name ``dabai-qr-photos-v1`` stands for the exact generator in
this file (change the generator, change the name).
"""

from __future__ import annotations

import base64
import math
import time
from typing import Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

SET_NAME = "dabai-qr-photos-v1"
FRAME_W, FRAME_H = 640, 480
FOCAL = 690.0

CATEGORIES: Tuple[str, ...] = (
    "tilt",
    "motion_blur",
    "defocus",
    "glare",
    "small",
    "low_contrast",
    "phone",
    "phone_dark",
    "noise_jpeg",
    "uneven_light",
    "combo",
)
_COMBINABLE = ("tilt", "motion_blur", "defocus", "glare", "small", "low_contrast", "noise_jpeg", "uneven_light")


def make_payload(rng: np.random.Generator) -> str:
    """A pass-shaped token: ``DABAI1.`` + 140 base64url characters (105 random bytes)."""
    raw = rng.integers(0, 256, size=105, dtype=np.uint8).tobytes()
    return "DABAI1." + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


_MATRIX_CACHE: Dict[str, np.ndarray] = {}


def _qr_matrix(text: str) -> np.ndarray:
    """Module matrix (1 = dark) with a 4-module quiet zone, error level M."""
    m = _MATRIX_CACHE.get(text)
    if m is None:
        import segno

        q = segno.make(text, error="m", micro=False, boost_error=False)
        m = np.pad(np.array([list(r) for r in q.matrix], dtype=np.uint8), 4)
        if len(_MATRIX_CACHE) > 64:
            _MATRIX_CACHE.clear()
        _MATRIX_CACHE[text] = m
    return m


# --------------------------------------------------------------------------------------------------------------
# sample parameters


def _sample_params(rng: np.random.Generator, category: str) -> dict:
    """Draw the scene and degradation parameters of one sample (frame 0 of a burst)."""
    p: dict = {
        "category": category,
        "phone": bool(rng.random() < 0.35),
        "dark_mode": False,
        "module": float(rng.uniform(2.4, 4.6)),
        "yaw": float(rng.uniform(-18, 18)),
        "pitch": float(rng.uniform(-18, 18)),
        "roll": float(rng.uniform(-180, 180) if rng.random() < 0.3 else rng.uniform(-20, 20)),
        "pos": (float(rng.random()), float(rng.random())),
        "psf": float(rng.uniform(0.45, 0.8)),
        "motion": 0.0,
        "motion_angle": float(rng.uniform(0, 180)),
        "defocus": 0.0,
        "glare": None,
        "ink_contrast": float(rng.uniform(0.75, 0.92)),
        "exposure": float(rng.uniform(0.85, 1.1)),
        "noise": float(rng.uniform(1.5, 4.0)),
        "jpeg": int(rng.integers(70, 93)),
        "light": None,
        "moire": None,
        "screen_gamma": float(rng.uniform(0.8, 1.3)),
        "screen_level": float(rng.uniform(0.85, 1.0)),
        "bloom": float(rng.uniform(0.0, 0.15)),
        "bg_seed": int(rng.integers(0, 2**31 - 1)),
    }
    cats = [category]
    mild = 1.0
    if category == "combo":
        k = 2 if rng.random() < 0.6 else 3
        cats = list(rng.choice(_COMBINABLE, size=k, replace=False))
        mild = 0.7
        p["combo_of"] = cats
    for c in cats:
        _apply_category(rng, p, c, mild)
    if category == "phone":
        p["phone"] = True
    return p


def _apply_category(rng: np.random.Generator, p: dict, c: str, mild: float) -> None:
    if c == "tilt":
        t = rng.uniform(28, 52) * (0.75 if mild < 1 else 1.0)
        a = rng.uniform(0, 2 * math.pi)
        p["yaw"], p["pitch"] = float(t * math.cos(a)), float(t * math.sin(a))
        p["module"] = float(rng.uniform(3.0, 5.5))
    elif c == "motion_blur":
        p["motion"] = float(rng.uniform(3.0, 6.5) * mild)
        p["module"] = max(p["module"], float(rng.uniform(3.0, 5.5)))
    elif c == "defocus":
        p["module"] = max(p["module"], float(rng.uniform(3.5, 6.0)))
        p["defocus"] = float(p["module"] * rng.uniform(0.45, 0.75) * (0.8 if mild < 1 else 1.0))
    elif c == "glare":
        p["glare"] = {
            "u": float(rng.uniform(-0.35, 0.35)),
            "v": float(rng.uniform(-0.35, 0.35)),
            "sigma": float(rng.uniform(0.06, 0.16) * mild),
            "amp": float(rng.uniform(180, 320)),
            "aspect": float(rng.uniform(0.4, 1.0)),
            "angle": float(rng.uniform(0, 180)),
        }
    elif c == "small":
        p["module"] = float(rng.uniform(1.5, 2.6) / (mild ** 0.5))
        p["psf"] = float(rng.uniform(0.45, 0.7))
    elif c == "low_contrast":
        p["ink_contrast"] = float(rng.uniform(0.11, 0.28) / mild)
        p["exposure"] = float(rng.uniform(0.45, 1.0))
        p["noise"] = float(rng.uniform(2.5, 5.0))
    elif c == "noise_jpeg":
        p["noise"] = float(rng.uniform(12.0, 22.0) * mild)
        p["jpeg"] = int(rng.integers(8, 26))
        p["module"] = min(p["module"], float(rng.uniform(2.4, 4.0)))
    elif c == "uneven_light":
        if rng.random() < 0.5:
            p["light"] = {
                "kind": "shadow",
                "angle": float(rng.uniform(0, 2 * math.pi)),
                "offset": float(rng.uniform(-0.25, 0.25)),
                "depth": float(rng.uniform(0.7, 0.92) * mild),
                "soft": float(rng.uniform(1.0, 6.0)),
            }
        else:
            p["light"] = {
                "kind": "falloff",
                "angle": float(rng.uniform(0, 2 * math.pi)),
                "depth": float(rng.uniform(0.75, 0.93) * mild),
            }
        p["exposure"] = float(rng.uniform(0.6, 1.1))
        p["module"] = min(p["module"], float(rng.uniform(2.2, 4.0)))
    elif c in ("phone", "phone_dark"):
        p["phone"] = True
        p["moire"] = {
            "period": float(rng.uniform(6.0, 22.0)),
            "angle": float(rng.uniform(0, math.pi)),
            "amp": float(rng.uniform(0.2, 0.5)),
            "grid_amp": float(rng.uniform(0.05, 0.2)),
            "grid_period": float(rng.uniform(2.1, 3.4)),
        }
        p["screen_gamma"] = float(rng.uniform(0.4, 2.2))
        p["screen_level"] = float(rng.uniform(0.8, 1.0))
        p["bloom"] = float(rng.uniform(0.3, 0.9))
        p["exposure"] = float(rng.uniform(0.9, 1.5))
        p["module"] = min(p["module"], float(rng.uniform(2.2, 4.0)))
        if c == "phone_dark":
            p["dark_mode"] = True
            p["screen_level"] = float(rng.uniform(0.55, 0.9))
            p["bloom"] = float(rng.uniform(0.1, 0.35))
            p["moire"]["grid_amp"] = float(rng.uniform(0.03, 0.12))


def _jitter(p: dict, rng: np.random.Generator) -> dict:
    """The same sample a fraction of a second later: small changes in pose, blur, glare, exposure, noise."""
    q = dict(p)
    q["yaw"] = p["yaw"] + float(rng.normal(0, 1.5))
    q["pitch"] = p["pitch"] + float(rng.normal(0, 1.5))
    q["roll"] = p["roll"] + float(rng.normal(0, 1.5))
    q["module"] = p["module"] * float(np.clip(rng.normal(1.0, 0.025), 0.94, 1.06))
    q["pos"] = (float(np.clip(p["pos"][0] + rng.normal(0, 0.02), 0, 1)),
                float(np.clip(p["pos"][1] + rng.normal(0, 0.02), 0, 1)))
    q["motion"] = p["motion"] * float(rng.uniform(0.65, 1.15)) if p["motion"] > 0 else 0.0
    q["motion_angle"] = p["motion_angle"] + float(rng.normal(0, 8))
    q["defocus"] = max(0.0, p["defocus"] + float(rng.normal(0, 0.25))) if p["defocus"] > 0 else 0.0
    q["exposure"] = p["exposure"] * float(rng.uniform(0.94, 1.06))
    if p["glare"] is not None:
        g = dict(p["glare"])
        g["u"] += float(rng.normal(0, 0.03))
        g["v"] += float(rng.normal(0, 0.03))
        q["glare"] = g
    return q


# --------------------------------------------------------------------------------------------------------------
# rendering


_BG_CACHE: Dict[int, np.ndarray] = {}
_GRID: List[np.ndarray] = []


def _grid() -> Tuple[np.ndarray, np.ndarray]:
    if not _GRID:
        yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
        _GRID.extend([xx, yy])
    return _GRID[0], _GRID[1]


def _background(seed: int) -> np.ndarray:
    """A textured, cluttered indoor/outdoor-looking background (float32 BGR, 0..255); cached per seed."""
    bg = _BG_CACHE.get(seed)
    if bg is None:
        if len(_BG_CACHE) > 8:
            _BG_CACHE.clear()
        bg = _BG_CACHE[seed] = _make_background(seed)
    return bg.copy()


def _make_background(seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    h, w = FRAME_H, FRAME_W
    base = r.uniform(60, 190, size=3).astype(np.float32)
    coarse = cv2.resize(r.normal(0, 28, size=(4, 5, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    mid = cv2.resize(r.normal(0, 14, size=(24, 32, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    img = base[None, None, :] + coarse + mid
    for _ in range(int(r.integers(4, 12))):
        color = tuple(float(c) for c in r.uniform(20, 235, size=3))
        x0, y0 = int(r.integers(-50, w)), int(r.integers(-50, h))
        if r.random() < 0.5:
            cv2.rectangle(img, (x0, y0), (x0 + int(r.integers(20, 260)), y0 + int(r.integers(20, 200))), color, -1)
        else:
            cv2.line(img, (x0, y0), (int(r.integers(0, w)), int(r.integers(0, h))), color, int(r.integers(1, 6)))
    # fine texture: fabric/wall grain and a few high-contrast edges (things a finder-pattern search may trip on)
    img += r.standard_normal((h, w, 1), dtype=np.float32) * 5.0
    return cv2.GaussianBlur(img, (0, 0), 1.2)


def _object_texture(p: dict, payload: str, s: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[float, float, float]]:
    """Card or phone texture at ``s`` px per module.

    Returns (grey float32 0..1 reflectance/emission, alpha mask float32, emissive mask float32,
    (code centre x, code centre y, code side) in texture px).
    """
    mat = _qr_matrix(payload)
    n = mat.shape[0]
    code = np.kron(mat, np.ones((s, s), dtype=np.uint8)).astype(np.float32)  # 1 = dark
    side = n * s
    if p["phone"]:
        screen_w = side + 2 * s
        screen_h = int(side * 2.0)
        bez = max(2, int(0.06 * screen_w))
        tw, th = screen_w + 2 * bez, screen_h + 2 * bez
        tex = np.full((th, tw), 0.06, np.float32)  # bezel
        lvl = p["screen_level"]
        if p["dark_mode"]:
            bg_v, ink_v = 0.08, lvl
        else:
            bg_v, ink_v = lvl, 0.04
        scr = np.full((screen_h, screen_w), bg_v, np.float32)
        cy = int(screen_h * 0.45 - side / 2)
        cx = s
        scr[cy:cy + side, cx:cx + side] = np.where(code > 0, ink_v, bg_v)
        # a status bar and a caption line (UI clutter)
        scr[: max(2, s * 2), :] = 0.3 if not p["dark_mode"] else 0.15
        ty = cy + side + 3 * s
        scr[ty:ty + 2 * s, 4 * s: screen_w - 4 * s] = ink_v * 0.6 + bg_v * 0.4
        scr = np.power(np.clip(scr, 0, 1), p["screen_gamma"])
        tex[bez:bez + screen_h, bez:bez + screen_w] = scr
        emis = np.zeros_like(tex)
        emis[bez:bez + screen_h, bez:bez + screen_w] = 1.0
        alpha = np.zeros_like(tex)
        rad = int(bez * 2.5)
        cv2.rectangle(alpha, (rad, 0), (tw - 1 - rad, th - 1), 1.0, -1)
        cv2.rectangle(alpha, (0, rad), (tw - 1, th - 1 - rad), 1.0, -1)
        for (x, y) in ((rad, rad), (tw - 1 - rad, rad), (rad, th - 1 - rad), (tw - 1 - rad, th - 1 - rad)):
            cv2.circle(alpha, (x, y), rad, 1.0, -1)
        return tex, alpha, emis, (bez + cx + side / 2.0, bez + cy + side / 2.0, float(side))
    paper = 0.93
    ink = paper * (1.0 - p["ink_contrast"])
    mh = 3 * s
    tw, th = side + 2 * mh, side + 2 * mh + 8 * s
    tex = np.full((th, tw), paper, np.float32)
    tex[mh:mh + side, mh:mh + side] = np.where(code > 0, ink, paper)
    # a printed caption under the code
    ty = mh + side + 2 * s
    tex[ty:ty + 2 * s, mh + 4 * s: tw - mh - 4 * s] = ink * 0.5 + paper * 0.5
    alpha = np.ones_like(tex)
    return tex, alpha, np.zeros_like(tex), (mh + side / 2.0, mh + side / 2.0, float(side))


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, x, z = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _project(pts: np.ndarray, rot: np.ndarray, scale: float) -> np.ndarray:
    """Object-plane points (texture px, centred on the code) → image offsets from the code centre."""
    P = np.concatenate([pts * scale, np.zeros((len(pts), 1))], axis=1) @ rot.T
    z = P[:, 2] + FOCAL
    return FOCAL * P[:, :2] / z[:, None]


def _disk_kernel(r: float) -> np.ndarray:
    k = int(math.ceil(r))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1].astype(np.float32)
    d = np.clip(r + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0)
    return d / d.sum()


def _motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    k = int(math.ceil(length / 2)) + 1
    ker = np.zeros((2 * k + 1, 2 * k + 1), np.float32)
    a = math.radians(angle_deg)
    dx, dy = math.cos(a) * length / 2, math.sin(a) * length / 2
    cv2.line(ker, (int(round(k * 16 - dx * 16)), int(round(k * 16 - dy * 16))),
             (int(round(k * 16 + dx * 16)), int(round(k * 16 + dy * 16))), 1.0, 1, cv2.LINE_AA, shift=4)
    return ker / max(ker.sum(), 1e-6)


def render_frame(p: dict, payload: Optional[str], rng: np.random.Generator) -> np.ndarray:
    """Render one 640x480 BGR uint8 frame of the scene described by ``p`` (no code when ``payload`` is None)."""
    h, w = FRAME_H, FRAME_W
    img = _background(p["bg_seed"])
    em_f = np.zeros((h, w), np.float32)
    if payload is not None:
        m = p["module"]
        s = max(2, int(math.ceil(2.0 * m)))
        tex, alpha, emis, (ucx, ucy, side) = _object_texture(p, payload, s)
        tex = cv2.GaussianBlur(tex, (0, 0), 0.35 * s / m + 0.01)
        rot = _rotation(p["yaw"], p["pitch"], p["roll"])
        scale = m / s
        th, tw = tex.shape
        obj = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float64) - [ucx, ucy]
        code = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * (side / 2.0)
        dobj = _project(obj, rot, scale)
        dcode = _project(code, rot, scale)
        lo, hi = dcode.min(axis=0), dcode.max(axis=0)
        margin = 6.0
        rx = (margin - lo[0], w - margin - hi[0])
        ry = (margin - lo[1], h - margin - hi[1])
        cx = rx[0] + p["pos"][0] * max(0.0, rx[1] - rx[0]) if rx[1] > rx[0] else w / 2.0
        cy = ry[0] + p["pos"][1] * max(0.0, ry[1] - ry[0]) if ry[1] > ry[0] else h / 2.0
        H = cv2.getPerspectiveTransform((obj + [ucx, ucy]).astype(np.float32), (dobj + [cx, cy]).astype(np.float32))
        stack = cv2.merge([tex, alpha, emis])
        warped = cv2.warpPerspective(stack, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        o_tex, o_a, o_em = warped[..., 0], warped[..., 1], warped[..., 2]
        em_f = o_em * o_a
        if p["phone"]:
            lum = o_tex * 255.0
            if p["bloom"] > 0:
                lum = lum + p["bloom"] * cv2.GaussianBlur(lum * o_em, (0, 0), 2.0 * m)
            col = np.stack([lum * 0.98, lum, lum * 0.96], axis=-1)
            if p["moire"] is not None:
                mo = p["moire"]
                xx, yy = _grid()
                t = xx * math.cos(mo["angle"]) + yy * math.sin(mo["angle"])
                band = 1.0 - mo["amp"] * (0.5 + 0.5 * np.sin(2 * math.pi * t / mo["period"]))
                grid = 1.0 - mo["grid_amp"] * (0.5 + 0.5 * np.sin(2 * math.pi * xx / mo["grid_period"]))
                f = (band * grid - 1.0) * o_em + 1.0
                col = col * f[..., None]
        else:
            tint = np.array([0.97, 1.0, 1.02], np.float32) * 255.0
            col = o_tex[..., None] * tint[None, None, :]
        img = img * (1.0 - o_a[..., None]) + col * o_a[..., None]
        # glare: a specular blob over the code (stronger on glossy phone screens)
        g = p["glare"]
        if g is not None:
            gx = cx + g["u"] * (hi[0] - lo[0])
            gy = cy + g["v"] * (hi[1] - lo[1])
            sig = g["sigma"] * max(hi[0] - lo[0], hi[1] - lo[1]) + 2.0
            xx, yy = _grid()
            a = math.radians(g["angle"])
            du, dv = xx - gx, yy - gy
            r1 = (du * math.cos(a) + dv * math.sin(a)) / sig
            r2 = (-du * math.sin(a) + dv * math.cos(a)) / (sig * g["aspect"])
            blob = g["amp"] * np.exp(-0.5 * (r1 * r1 + r2 * r2)) * o_a
            img = img + blob[..., None]
    # ambient light field (the emissive screen ignores it)
    illum = np.full((h, w), p["exposure"], np.float32)
    lt = p["light"]
    if lt is not None:
        xx, yy = _grid()
        t = ((xx - w / 2) * math.cos(lt["angle"]) + (yy - h / 2) * math.sin(lt["angle"])) / (0.5 * w)
        if lt["kind"] == "shadow":
            edge = 0.5 + 0.5 * np.tanh((t - lt["offset"]) * (0.25 * w) / lt["soft"])
            illum = illum * (1.0 - lt["depth"] * edge)
        else:
            illum = illum * (1.0 - lt["depth"] * np.clip((t + 1.0) / 2.0, 0.0, 1.0) ** 1.5)
    em_gain = 0.75 + 0.25 * p["exposure"]
    img = img * (illum * (1.0 - em_f) + em_gain * em_f)[..., None]
    # camera: optics, motion/defocus blur, noise, JPEG
    img = cv2.GaussianBlur(img, (0, 0), p["psf"])
    if p["motion"] > 0.5:
        img = cv2.filter2D(img, -1, _motion_kernel(p["motion"], p["motion_angle"]), borderType=cv2.BORDER_REFLECT)
    if p["defocus"] > 0.3:
        img = cv2.filter2D(img, -1, _disk_kernel(p["defocus"]), borderType=cv2.BORDER_REFLECT)
    img += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(p["noise"])
    img += rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(p["noise"] * 0.5)
    out = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [int(cv2.IMWRITE_JPEG_QUALITY), int(p["jpeg"])])
    if ok:
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


# --------------------------------------------------------------------------------------------------------------
# the set


def iter_samples(n: int = 300, seed: int = 0, frames: int = 1) -> Iterator[Tuple[str, str, List[np.ndarray]]]:
    """Yield ``(category, payload, [frame, ...])`` for ``n`` samples; ``frames`` > 1 gives a live-camera burst.

    Frame 0 of a burst is the same image whatever ``frames`` is, so single-frame and stream results compare.
    Categories cycle in a fixed order so any ``n`` covers them evenly.
    """
    for i in range(n):
        r = np.random.default_rng([seed, i, 1])
        cat = CATEGORIES[i % len(CATEGORIES)]
        payload = make_payload(r)
        p = _sample_params(r, cat)
        imgs = [render_frame(p, payload, np.random.default_rng([seed, i, 2]))]
        for k in range(1, frames):
            fr = np.random.default_rng([seed, i, 3, k])
            imgs.append(render_frame(_jitter(p, fr), payload, fr))
        yield cat, payload, imgs


def no_code_frames(n: int = 20, seed: int = 0) -> List[np.ndarray]:
    """Frames of the same kind of scenes with no code in them (background only)."""
    out = []
    for i in range(n):
        r = np.random.default_rng([seed, i, 7])
        p = _sample_params(r, CATEGORIES[i % len(CATEGORIES)])
        out.append(render_frame(p, None, r))
    return out


def _pct(xs: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if xs else float("nan")


def run_qr_bench(n: int = 300, seed: int = 0, frames: int = 5) -> dict:
    """Decode rates of plain pyzbar, the kiosk's one-shot decoder and its live-stream reader on the set.

    A read counts only when the decoded text equals the true payload; any other text is a wrong read.
    """
    from pyzbar import pyzbar

    from kiosk.vision.qr import QrReader, decode_qr

    def plain(img: np.ndarray) -> List[str]:
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return [s.data.decode("utf-8", errors="replace")
                for s in pyzbar.decode(grey, symbols=[pyzbar.ZBarSymbol.QRCODE])]

    keys = ("plain", "single", "stream")
    tot = {k: 0 for k in keys}
    wrong = {k: 0 for k in keys}
    t_plain: List[float] = []
    t_single: List[float] = []
    t_stream: List[float] = []
    f2d: List[int] = []
    by_cat: Dict[str, Dict[str, int]] = {}
    for cat, payload, imgs in iter_samples(n, seed, frames):
        c = by_cat.setdefault(cat, {"n": 0, "plain": 0, "single": 0, "stream": 0})
        c["n"] += 1
        t0 = time.perf_counter()
        r = plain(imgs[0])
        t_plain.append((time.perf_counter() - t0) * 1e3)
        ok = payload in r
        wrong["plain"] += sum(1 for s in r if s != payload)
        tot["plain"] += ok
        c["plain"] += ok
        t0 = time.perf_counter()
        r = decode_qr(imgs[0])
        t_single.append((time.perf_counter() - t0) * 1e3)
        ok = payload in r
        wrong["single"] += sum(1 for s in r if s != payload)
        tot["single"] += ok
        c["single"] += ok
        reader = QrReader()
        got = 0
        for k, img in enumerate(imgs):
            t0 = time.perf_counter()
            r = reader.read(img)
            t_stream.append((time.perf_counter() - t0) * 1e3)
            wrong["stream"] += sum(1 for s in r if s != payload)
            if payload in r:
                got = k + 1
                break
        if got:
            f2d.append(got)
        tot["stream"] += bool(got)
        c["stream"] += bool(got)
    nc = no_code_frames(20, seed)
    reader = QrReader()
    t_nc: List[float] = []
    false_nc = 0
    for _rep in range(3):
        for img in nc:
            t0 = time.perf_counter()
            r = reader.read(img)
            t_nc.append((time.perf_counter() - t0) * 1e3)
            false_nc += len(r)
    nn = max(n, 1)
    return {
        "set": SET_NAME,
        "seed": seed,
        "n": n,
        "frames_per_sample": frames,
        "plain_pyzbar": {"rate": tot["plain"] / nn, "wrong_reads": wrong["plain"],
                         "p50_ms": _pct(t_plain, 50), "p95_ms": _pct(t_plain, 95)},
        "kiosk_single_frame": {"rate": tot["single"] / nn, "wrong_reads": wrong["single"],
                               "p50_ms": _pct(t_single, 50), "p95_ms": _pct(t_single, 95)},
        "kiosk_stream": {"rate": tot["stream"] / nn, "wrong_reads": wrong["stream"],
                         "frames_to_decode_p50": _pct([float(x) for x in f2d], 50),
                         "frames_to_decode_mean": float(np.mean(f2d)) if f2d else float("nan"),
                         "frame_p50_ms": _pct(t_stream, 50), "frame_p95_ms": _pct(t_stream, 95),
                         "frame_max_ms": max(t_stream) if t_stream else float("nan")},
        "no_code_frame_p50_ms": _pct(t_nc, 50),
        "no_code_frame_p95_ms": _pct(t_nc, 95),
        "no_code_false_reads": false_nc,
        "by_category": {k: {"n": v["n"], "plain": v["plain"] / v["n"], "single": v["single"] / v["n"],
                            "stream": v["stream"] / v["n"]} for k, v in sorted(by_cat.items())},
    }
