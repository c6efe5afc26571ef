"""Draws what the kiosk saw and decided onto a frame (demo video; the Qt window draws its own)."""

from __future__ import annotations

from typing import Any, Tuple

import cv2
import numpy as np

from kiosk.core.events import Mask
from kiosk.fonts import pil_font

COLOURS = {  # BGR
    Mask.WITH: (60, 180, 60),
    Mask.WITHOUT: (40, 40, 220),
    Mask.INCORRECT: (0, 160, 240),
    Mask.UNSURE: (0, 116, 227),
}
SCREEN_COLOURS = {"granted": (60, 170, 60), "denied": (50, 50, 210)}


def _font(size: int) -> Any:
    """A Pillow font with Chinese glyphs when one is installed (``kiosk.fonts``)."""
    return pil_font(size)


def _text(image: np.ndarray, lines: Tuple[Tuple[Tuple[int, int], str, int, Tuple[int, int, int]], ...]) -> np.ndarray:
    from PIL import Image, ImageDraw

    pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(pil)
    for xy, text, size, bgr in lines:
        draw.text(xy, text, font=_font(size), fill=(bgr[2], bgr[1], bgr[0]))
    return cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR)


def annotate(result: Any, screen: str, prompt: str, title: str) -> np.ndarray:
    image = result.frame.image.copy()
    for face in result.faces:
        colour = COLOURS.get(face.mask, (200, 200, 200))
        x1, y1, x2, y2 = face.box
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        label = "#{} {} {:.2f}".format(face.track_id, face.mask.value, face.confidence)
        cv2.putText(image, label, (x1, max(12, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    for check in result.checks:
        cv2.putText(image, "QR ok" if check.valid else "QR " + check.reason, (430, 140),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (60, 170, 60) if check.valid else (50, 50, 210), 1, cv2.LINE_AA)
    bar = SCREEN_COLOURS.get(screen, (70, 70, 70))
    cv2.rectangle(image, (0, 0), (image.shape[1], 58), bar, -1)
    cv2.rectangle(image, (0, image.shape[0] - 26), (image.shape[1], image.shape[0]), (30, 30, 30), -1)
    stamp = "t={:.1f}s  vision {:.0f} ms".format(result.frame.t, result.ms)
    return _text(image, (
        ((10, 4), "[{}] {}".format(screen, prompt), 22, (255, 255, 255)),
        ((10, image.shape[0] - 24), "{}   {}".format(title, stamp), 16, (230, 230, 230)),
    ))
