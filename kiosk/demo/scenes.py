"""Renders the demo's camera frames: a gate lobby, a resident, and a phone showing a pass.

The people are the project's own assets (a public-domain NASA portrait with masks drawn on, see
assets/demo/README.md); the QR code is the real signed pass issued for the scenario, so every
frame goes through the same detector, QR reader and verifier as a live camera frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

from kiosk.vision.qr import render_qr

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "demo"
W, H = 640, 480


class AssetMissing(FileNotFoundError):
    pass


def load_person(person: str, mask: str) -> np.ndarray:
    """A BGRA head-and-shoulders image from assets/demo (mask: with_mask, without_mask, …)."""
    path = ASSETS / "{}_{}.png".format(person, mask)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise AssetMissing("demo asset {} is missing: run `python tools/make_demo_assets.py`".format(path))
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
    if image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    return image


def lobby(seed: int = 0) -> np.ndarray:
    """A plain gate-lobby background: wall, door frame, floor, a little sensor noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    wall = np.stack([200 - 30 * y, 205 - 25 * y, 195 - 20 * y], axis=2) * np.ones((1, W, 1), np.float32)
    image = wall.astype(np.uint8)
    cv2.rectangle(image, (40, 30), (600, 470), (150, 140, 120), 14)  # door frame
    cv2.rectangle(image, (0, 420), (W, H), (110, 115, 120), -1)  # floor
    noise = rng.normal(0, 3, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def phone_with_code(text: str, width: int = 150, blurred: bool = False) -> np.ndarray:
    """A phone (BGRA) whose screen shows the QR code of ``text``."""
    code = render_qr(text, scale=4, border=3)
    side = width - 16
    code = cv2.resize(code, (side, side), interpolation=cv2.INTER_NEAREST)
    height = int(width * 1.9)
    phone = np.zeros((height, width, 4), np.uint8)
    cv2.rectangle(phone, (0, 0), (width - 1, height - 1), (30, 30, 35, 255), -1)
    screen = np.full((height - 40, width - 10, 3), 250, np.uint8)
    top = (screen.shape[0] - side) // 2
    left = (screen.shape[1] - side) // 2
    screen[top : top + side, left : left + side] = cv2.cvtColor(code, cv2.COLOR_GRAY2BGR)
    phone[20 : height - 20, 5 : width - 5, :3] = screen
    if blurred:  # waved too fast for the camera: motion and defocus blur
        kernel = np.zeros((25, 25), np.float32)
        kernel[12, :] = 1.0 / 25
        phone[..., :3] = cv2.GaussianBlur(cv2.filter2D(phone[..., :3], -1, kernel), (0, 0), 3.0)
    return phone


def tilt(image: np.ndarray, degrees: float) -> np.ndarray:
    """A mild perspective turn about the vertical axis, as a hand holds a phone."""
    h, w = image.shape[:2]
    d = w * np.sin(np.radians(degrees)) * 0.25
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0, d], [w, 0], [w, h], [0, h - d]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))


def paste(frame: np.ndarray, overlay: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend a BGRA overlay onto a BGR frame at (x, y), clipped to the frame."""
    h, w = overlay.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    part = overlay[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    alpha = part[..., 3:4] / 255.0
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (part[..., :3] * alpha + region * (1 - alpha)).astype(np.uint8)


@dataclass(frozen=True)
class Shot:
    """What is in front of the camera during a span of frames [start, end)."""

    start: int
    end: int
    person: Optional[Tuple[str, str]] = None  # (person, mask class)
    code: Optional[str] = None  # pass token shown on the phone
    blurred: bool = False


def render(shots: List[Shot], frames: int, seed: int = 0) -> List[np.ndarray]:
    """The scenario's frames; the person sways a little so no two frames are identical."""
    base = lobby(seed)
    people = {}
    out = []
    for i in range(frames):
        frame = base.copy()
        for shot in shots:
            if not shot.start <= i < shot.end:
                continue
            if shot.person is not None:
                if shot.person not in people:
                    image = load_person(*shot.person)
                    scale = 300.0 / image.shape[1]
                    people[shot.person] = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                person = people[shot.person]
                sway = int(round(3 * np.sin(i * 0.7)))
                paste(frame, person, (W - person.shape[1]) // 2 - 40 + sway, H - person.shape[0] + 10)
            if shot.code is not None:
                phone = tilt(phone_with_code(shot.code, blurred=shot.blurred), 12 + 3 * np.sin(i * 0.5))
                paste(frame, phone, 430 + int(round(2 * np.cos(i * 0.6))), 150)
        out.append(frame)
    return out
