"""Image helpers shared by the camera sources and the models."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np


def to_bgr(frame: np.ndarray) -> Optional[np.ndarray]:
    """Any image array (grey, grey+1, BGR, BGRA; uint8/float/uint16) as contiguous uint8 BGR, or None if empty."""
    if frame is None:
        return None
    img = np.asarray(frame)
    if img.size == 0 or img.ndim not in (2, 3):
        return None
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        elif np.issubdtype(img.dtype, np.floating):
            scale = 255.0 if float(np.nanmax(img)) <= 1.0 else 1.0
            img = np.clip(np.nan_to_num(img) * scale, 0, 255).astype(np.uint8)
        else:
            img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    c = img.shape[2]
    if c == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if c == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if c == 3:
        return np.ascontiguousarray(img)
    return None
