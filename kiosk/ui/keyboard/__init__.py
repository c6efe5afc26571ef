"""On-screen keyboard with pinyin input for the 1024x600 touch panel (no physical keyboard at the gate).

* :mod:`kiosk.ui.keyboard.pinyin` — the pinyin engine, pure Python (no Qt): ``PinyinEngine().candidates("zhangsan")``.
* :mod:`kiosk.ui.keyboard.keyboard` — the Qt widget ``OnScreenKeyboard`` and ``attach_keyboard(window)``,
  which shows it at the bottom of ``window`` whenever one of its text fields has focus.

Importing this package does not import Qt; ``OnScreenKeyboard``, ``KeyboardDock`` and ``attach_keyboard`` are
loaded from :mod:`kiosk.ui.keyboard.keyboard` on first use.
"""

from __future__ import annotations

from typing import Any

from kiosk.ui.keyboard.pinyin import Candidate, PinyinEngine, default_engine

__all__ = ["Candidate", "PinyinEngine", "default_engine", "OnScreenKeyboard", "KeyboardDock", "attach_keyboard"]


def __getattr__(name: str) -> Any:  # PEP 562: the Qt parts only when asked for
    if name in ("OnScreenKeyboard", "KeyboardDock", "attach_keyboard"):
        from kiosk.ui.keyboard import keyboard

        return getattr(keyboard, name)
    raise AttributeError(name)
