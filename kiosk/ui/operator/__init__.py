"""The PIN-protected operator screen (issue 5): residents and passes, policy, devices, gate, access log, system.

``from kiosk.ui.operator import OperatorScreen, PinDialog, PinStore``. :class:`PinStore` needs no Qt
(``dabai-kiosk operator set-pin`` uses it headless); the Qt classes are imported on first use.
"""

from __future__ import annotations

from typing import Any

from kiosk.ui.operator.pinstore import PinResult, PinStore

PAGES = ("residents", "policy", "devices", "gate", "log", "system")  # OperatorScreen.PAGES, without importing Qt

__all__ = ["PAGES", "OperatorScreen", "PinDialog", "PinResult", "PinStore"]


def __getattr__(name: str) -> Any:
    if name == "OperatorScreen":
        from kiosk.ui.operator.screen import OperatorScreen

        return OperatorScreen
    if name == "PinDialog":
        from kiosk.ui.operator.pin import PinDialog

        return PinDialog
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
