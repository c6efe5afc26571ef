"""Finding a font with Chinese glyphs (fonts-noto-cjk) for text drawn outside Qt: pass captions, the demo video.

Neutral on purpose: no Qt, no demo code, Pillow only when a font object is asked for. The Qt app picks its
family through fontconfig (``kiosk/ui/fonts.py``) and falls back to the file found here.
"""

from __future__ import annotations

import functools
import subprocess
from typing import Any, Optional, Tuple

__all__ = ["cjk_font_path", "cjk_font", "cjk_pil_font", "pil_font"]

# Where Debian/Ubuntu's fonts-noto-cjk puts its collection when fontconfig cannot be asked.
KNOWN_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)


@functools.lru_cache(maxsize=1)
def cjk_font() -> Optional[Tuple[str, int]]:
    """The file of a font with Chinese glyphs and the index of its Simplified Chinese face in a
    collection (``.ttc``), or None when none is installed."""
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}\n%{index}", "Noto Sans CJK SC"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    path, _, index = found.partition("\n")
    path = path.strip()
    if path and "cjk" in path.lower():  # fc-match always answers; only a CJK file is an answer here
        return path, int(index) if index.strip().isdigit() else 0
    for known in KNOWN_FILES:
        try:
            open(known, "rb").close()
        except OSError:
            continue
        return known, 2  # the collection's order is JP, KR, SC, TC, HK; pil_font checks the name anyway
    return None


def cjk_font_path() -> Optional[str]:
    """The file of a font that has Chinese glyphs (fonts-noto-cjk), or None."""
    found = cjk_font()
    return found[0] if found else None


@functools.lru_cache(maxsize=8)
def cjk_pil_font(size: int) -> Optional[Any]:
    """A Pillow font of ``size`` pixels with Chinese glyphs, or None when no CJK font is installed."""
    from PIL import ImageFont

    found = cjk_font()
    if found is None:
        return None
    path, index = found
    for face in (index, 0):  # a wrong index in the collection: its first face still has the glyphs
        try:
            return ImageFont.truetype(path, size, index=face)
        except OSError:
            continue
    return None


def pil_font(size: int) -> Any:
    """A Pillow font of ``size`` pixels: with Chinese glyphs when one is installed, else Pillow's
    default font (ASCII only)."""
    font = cjk_pil_font(size)
    if font is not None:
        return font
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size)  # Pillow >= 10.1: scalable
    except TypeError:
        return ImageFont.load_default()
