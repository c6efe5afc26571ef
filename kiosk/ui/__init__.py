"""The resident-facing Qt app (PyQt5) and the operator screen.

PyQt5 is optional and GPL-3.0 licensed (the ``ui`` extra); the headless kiosk runs without it.
Nothing here imports Qt at import time, so ``qt_missing()`` and ``display_missing()`` can say
why the window cannot open before anything fails.
"""

from __future__ import annotations

import os
import sys
from typing import Optional


def qt_missing() -> Optional[str]:
    """Why PyQt5 cannot be used here, or None when it can."""
    try:
        import PyQt5.QtWidgets  # noqa: F401
    except ImportError as exc:
        return "PyQt5 is not installed ({}): pip install 'dabai-kiosk[ui]' (Jetson: apt-get install python3-pyqt5)".format(exc)
    return None


def display_missing() -> Optional[str]:
    """Why no window can be shown (no X/Wayland display and no Qt platform chosen), or None."""
    if os.environ.get("QT_QPA_PLATFORM"):  # offscreen, eglfs, linuxfb …: Qt was told where to draw
        return None
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return "no display (DISPLAY and WAYLAND_DISPLAY are unset; set DISPLAY=:0, or QT_QPA_PLATFORM=eglfs without X)"
