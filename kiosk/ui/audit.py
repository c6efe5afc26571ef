"""Check a screen as a person meets it: text contrast measured from rendered pixels, and touch targets.

``audit(root)`` grabs each visible, enabled label, button, check box, line edit (with text) and list of
``root`` and measures the contrast between its background (the most common colour of the grab) and its
text (the colour furthest from that background). Reading pixels instead of palettes catches every source
of colour at once: the desktop palette, style sheets, rich-text spans. WCAG exempts disabled controls.

``touch_targets(root)`` lists the visible, enabled controls a finger has to hit (buttons, fields, check boxes,
combo boxes, list and table rows) that are smaller than :data:`TOUCH_PX` in either direction.

``python -m kiosk.ui.audit`` renders every operator page in this process's Qt platform and prints the
worst figures as JSON (the test runs it under Xvfb with a dark desktop palette).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from kiosk.ui.theme import TOUCH_PX, contrast_ratio

WCAG_AA = 4.5


def image_contrast(rgb: np.ndarray) -> float:
    """Contrast of the text in an (H, W, 3) uint8 grab: background = its most common colour, text = the
    colour furthest from it in luminance. 21 for black on white; 1.0 for a blank grab."""
    pixels = rgb.reshape(-1, 3)
    if len(pixels) == 0:
        return 1.0
    keys = (pixels[:, 0].astype(np.int64) << 16) | (pixels[:, 1].astype(np.int64) << 8) | pixels[:, 2]
    values, counts = np.unique(keys, return_counts=True)  # each colour once, with how often it occurs
    colours = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=1)
    background = colours[int(np.argmax(counts))]
    weights = np.array([0.2126, 0.7152, 0.0722])
    lum = (colours / 255.0) @ weights  # a luminance proxy to find the candidate quickly
    candidate = colours[int(np.argmax(np.abs(lum - np.dot(background / 255.0, weights))))]
    return contrast_ratio(tuple(float(c) for c in candidate), tuple(float(c) for c in background))  # type: ignore


def _grab_rgb(widget: Any) -> np.ndarray:
    from PyQt5.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    data = np.frombuffer(image.constBits().asstring(stride * h), np.uint8).reshape(h, stride)
    return data[:, : w * 3].reshape(h, w, 3).copy()


def _text_of(widget: Any) -> str:
    for name in ("text", "currentText", "title"):
        get = getattr(widget, name, None)
        if callable(get):
            try:
                value = get()
            except TypeError:
                continue
            if isinstance(value, str):
                return value
    return ""


def audit(root: Any) -> List[Dict[str, Any]]:
    """[{"widget", "text", "contrast"}] for every visible, enabled text widget under ``root``, measured on the
    whole window as it is drawn (a widget's own grab would miss the background its parents paint under it)."""
    from PyQt5.QtCore import QPoint
    from PyQt5.QtWidgets import QAbstractButton, QApplication, QLabel, QLineEdit, QScrollArea

    top = root.window()
    screen = _grab_rgb(top)
    found = []
    for widget in [root] + root.findChildren((QLabel, QAbstractButton, QLineEdit)):
        if not widget.isVisible() or not widget.isEnabled() or widget.width() < 4 or widget.height() < 4:
            continue
        text = _text_of(widget).strip()
        if not text or (isinstance(widget, QLabel) and widget.pixmap() is not None and not widget.text()):
            continue
        if widget.visibleRegion().boundingRect().size() != widget.size():  # scrolled partly away: scroll to it
            area = widget.parent()
            while area is not None and not isinstance(area, QScrollArea):
                area = area.parent()
            if area is None:
                continue  # covered by a sibling, not scrollable: not what a person sees
            area.ensureWidgetVisible(widget, 0, 0)
            QApplication.processEvents()
            screen = _grab_rgb(top)
        seen = widget.visibleRegion().boundingRect()
        if seen.width() < 4 or seen.height() < 4:
            continue
        corner = widget.mapTo(top, seen.topLeft()) if widget is not top else QPoint(0, 0)
        x, y = max(0, corner.x()), max(0, corner.y())
        crop = screen[y: y + seen.height(), x: x + seen.width()]
        found.append({"widget": "{}#{}".format(type(widget).__name__, widget.objectName()),
                      "text": text[:40], "contrast": round(image_contrast(crop), 2)})
    return found


def touch_targets(root: Any, minimum: int = TOUCH_PX) -> List[Dict[str, Any]]:
    """[{"widget", "text", "size"}] of the visible, enabled controls under ``root`` smaller than ``minimum``
    pixels in height or width (rows of lists and tables count by their height)."""
    from PyQt5.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSpinBox,
        QComboBox,
        QHeaderView,
        QLineEdit,
        QTableView,
    )

    small = []
    for widget in root.findChildren((QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView)):
        if not widget.isVisible() or not widget.isEnabled() or widget.window() is not root.window():
            continue
        if isinstance(widget, QHeaderView) or isinstance(widget.parent(), (QAbstractSpinBox, QComboBox)):
            continue  # a header, or the text field inside a date or combo box: the box itself is the target
        if isinstance(widget, QAbstractItemView):
            model = widget.model()
            if model is None or model.rowCount() == 0:
                continue
            height = widget.rowHeight(0) if isinstance(widget, QTableView) else widget.sizeHintForRow(0)
            if height < minimum:
                small.append({"widget": type(widget).__name__, "text": "row", "size": [widget.width(), height]})
            continue
        if widget.height() < minimum or widget.width() < minimum:
            small.append({"widget": type(widget).__name__, "text": _text_of(widget)[:30],
                          "size": [widget.width(), widget.height()]})
    return small


def audit_operator_pages(size: Tuple[int, int] = (1024, 600)) -> Dict[str, List[Dict[str, Any]]]:
    """Every operator page of a demo data home, shown inside the resident window as the app shows it (the window's
    own dark palette must not reach it), at ``size``: the contrast audit of each, and its touch targets under
    ``"<page>:targets"``."""
    from PyQt5.QtWidgets import QApplication

    from kiosk.config import Home, PolicyConfig
    from kiosk.demo.run import prepare_home
    from kiosk.ui.bridge import UiBridge
    from kiosk.ui.operator import PAGES, OperatorScreen  # type: ignore[attr-defined]
    from kiosk.ui.window import KioskWindow

    out = {}
    with tempfile.TemporaryDirectory(prefix="dabai-contrast-") as tmp:
        home = Home(Path(tmp) / "home")
        prepare_home(home, None, Path(tmp) / "speech")
        window = KioskWindow(UiBridge(), PolicyConfig())
        window.resize(*size)
        window.show()
        screen = OperatorScreen(home, lambda: {"fps": 14.8, "camera": "ok"})
        window.show_operator(screen)
        for page in PAGES:
            screen.show_page(page)
            QApplication.processEvents()
            out[page] = audit(screen)
            out[page + ":targets"] = touch_targets(screen.pages[page])
        screen.close_screen()
        window.hide_operator()
        window.close()
    return out


def main() -> int:
    """Under a desktop whose palette is dark (``--dark``: set here before the kiosk's theme, as a desktop
    theme would), render the operator pages and print each page's worst contrast and every failure."""
    from PyQt5.QtGui import QColor, QPalette
    from PyQt5.QtWidgets import QApplication

    from kiosk.ui.fonts import use_cjk_font

    app = QApplication.instance() or QApplication(["dabai-contrast"])
    if "--dark" in sys.argv:
        dark = QPalette()
        for role, colour in ((QPalette.Window, "#202124"), (QPalette.WindowText, "#e8eaed"), (QPalette.Base, "#2b2b2b"),
                             (QPalette.Text, "#e8eaed"), (QPalette.Button, "#303030"), (QPalette.ButtonText, "#e8eaed")):
            dark.setColor(role, QColor(colour))
        app.setPalette(dark)
    use_cjk_font(app)
    result = audit_operator_pages()
    texts = {page: rows for page, rows in result.items() if not page.endswith(":targets")}
    report = {
        "platform": app.platformName(),
        "worst": {page: min((r["contrast"] for r in rows), default=None) for page, rows in texts.items()},
        "failures": [dict(r, page=page) for page, rows in texts.items() for r in rows if r["contrast"] < WCAG_AA],
        "checked": sum(len(rows) for rows in texts.values()),
        "small_targets": [dict(r, page=page.split(":")[0]) for page, rows in result.items() if page.endswith(":targets")
                          for r in rows],
    }
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
