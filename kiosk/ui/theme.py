"""One fixed, high-contrast look for every screen, whatever the desktop's theme.

Qt takes its palette from the desktop when it runs under a real X server: with a dark desktop theme the
operator screen's labels came out black on near-black (offscreen screenshots never show that). The kiosk
sets Qt's Fusion style and this light palette on the whole application, so labels, dialogs and lists
look the same on every device. Colours are chosen for WCAG AA (text contrast at least 4.5:1); the test
renders every operator page under Xvfb with a dark desktop palette and measures it.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

TEXT = "#1b1f24"  # body text: 16:1 on the window colour
WINDOW = "#ffffff"
BASE = "#ffffff"  # inputs, lists, tables
ALTERNATE = "#f2f5f8"
BUTTON = "#e8eef5"
ACCENT = "#1f6feb"  # selection and accent buttons, with white text (4.6:1)
MUTED = "#5a636d"  # hints: 6.3:1 on white
DISABLED = "#8a939c"
LINK = "#0b57c2"
# A fingertip target of 9 mm on the kiosk's 7-inch 1024x600 panel (about 170 px per inch, 6.6 px per mm).
TOUCH_PX = 60

_APPLIED = "_dabai_theme"


def palette_colours() -> Dict[str, Tuple[str, str]]:
    """QPalette role name → (active colour, disabled colour)."""
    return {
        "Window": (WINDOW, WINDOW),
        "WindowText": (TEXT, DISABLED),
        "Base": (BASE, ALTERNATE),
        "AlternateBase": (ALTERNATE, ALTERNATE),
        "Text": (TEXT, DISABLED),
        "Button": (BUTTON, ALTERNATE),
        "ButtonText": (TEXT, DISABLED),
        "BrightText": ("#ffffff", "#ffffff"),
        "Highlight": (ACCENT, "#c8d3df"),
        "HighlightedText": ("#ffffff", TEXT),
        "ToolTipBase": ("#fffbe6", "#fffbe6"),
        "ToolTipText": (TEXT, TEXT),
        "Link": (LINK, DISABLED),
        "PlaceholderText": (MUTED, DISABLED),
        "Light": ("#ffffff", "#ffffff"),
        "Midlight": ("#eef1f4", "#eef1f4"),
        "Mid": ("#b8c4d2", "#b8c4d2"),
        "Dark": ("#8a96a3", "#8a96a3"),
        "Shadow": ("#4a525a", "#4a525a"),
    }


def light_palette() -> Any:
    """The kiosk's QPalette (every role set, so nothing of the desktop's shows through)."""
    from PyQt5.QtGui import QColor, QPalette

    palette = QPalette()
    for role_name, (active, disabled) in palette_colours().items():
        role = getattr(QPalette, role_name, None)
        if role is None:  # PlaceholderText is Qt >= 5.12
            continue
        for group in (QPalette.Active, QPalette.Inactive):
            palette.setColor(group, role, QColor(active))
        palette.setColor(QPalette.Disabled, role, QColor(disabled))
    return palette


_translators: list = []  # Qt forgets a translator that Python lets go of


def install_qt_chinese(app: Any) -> bool:
    """Qt's own texts in Chinese (the print dialog, standard buttons, a line edit's menu), from the translations
    that ship with Qt (qtbase_zh_CN.qm); False where they are not installed."""
    from PyQt5.QtCore import QLibraryInfo, QTranslator

    translator = QTranslator(app)
    if not translator.load("qtbase_zh_CN", QLibraryInfo.location(QLibraryInfo.TranslationsPath)):
        return False
    app.installTranslator(translator)
    _translators.append(translator)
    return True


def apply_theme(app: Any) -> None:
    """Fusion style, the light palette and Qt's Chinese texts on the whole application (dialogs included)."""
    from PyQt5.QtWidgets import QStyleFactory

    if app is None or getattr(app, "property", lambda _: None)(_APPLIED):
        return
    style = QStyleFactory.create("Fusion")
    if style is not None:
        app.setStyle(style)
    app.setPalette(light_palette())
    install_qt_chinese(app)
    app.setProperty(_APPLIED, True)


def contrast_ratio(a: Tuple[float, float, float], b: Tuple[float, float, float]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (0..255 channels)."""

    def luminance(rgb: Tuple[float, float, float]) -> float:
        def channel(c: float) -> float:
            c = c / 255.0
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b_ = (channel(c) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_

    la, lb = luminance(a), luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)
