"""Picks a Chinese (CJK) font for the app explicitly, so Chinese never falls back to empty boxes."""

from __future__ import annotations

import logging
from typing import Iterable, Optional

log = logging.getLogger(__name__)

# Simplified-Chinese families first (fonts-noto-cjk, then other common Debian/Ubuntu packages).
PREFERRED = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
NO_FONT = "No Chinese font found: apt-get install fonts-noto-cjk (Chinese text would show as boxes)"


def choose_family(available: Iterable[str]) -> Optional[str]:
    """The preferred CJK family among ``available`` (QFontDatabase().families()), else None."""
    names = list(available)
    lower = {name.lower(): name for name in names}
    for wanted in PREFERRED:
        if wanted.lower() in lower:
            return lower[wanted.lower()]
    for name in names:  # any other family that says it is CJK
        if "cjk" in name.lower():
            return name
    return None


def use_cjk_font(app: object) -> Optional[str]:
    """Set the application font to a CJK family and return its name; None (and a warning) if none exists.
    Needs a QApplication."""
    from PyQt5.QtGui import QFont, QFontDatabase

    family = choose_family(QFontDatabase().families())
    if family is None:  # fontconfig may not list it: try the file kiosk.fonts finds
        from kiosk.fonts import cjk_font_path

        path = cjk_font_path()
        if path:
            font_id = QFontDatabase.addApplicationFont(path)
            families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
            family = families[0] if families else None
    if family is None:
        log.warning(NO_FONT)
        return None
    font = QFont(family)
    font.setStyleHint(QFont.SansSerif)
    app.setFont(font)  # type: ignore[attr-defined]
    return family
