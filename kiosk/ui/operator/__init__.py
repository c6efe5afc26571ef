"""The PIN-protected operator screen (issue 5): residents and passes, policy, devices, gate, access log, system;
on the property office's machine also 各门岗, every gate of the community (issue 14, ``OFFICE_PAGE``).

``from kiosk.ui.operator import OperatorScreen, PinDialog, PinStore``. :class:`PinStore` needs no Qt
(``dabai-kiosk operator set-pin`` uses it headless); the Qt classes are imported on first use.
"""

from __future__ import annotations

from typing import Any

from kiosk.ui.operator.pinstore import PinResult, PinStore

PAGES = ("residents", "policy", "devices", "gate", "log", "system")  # OperatorScreen.PAGES, without importing Qt
OFFICE_PAGE = "office"  # only where the data home holds the office's database: in that screen's own PAGES

__all__ = ["OFFICE_PAGE", "PAGES", "OperatorScreen", "PinDialog", "PinResult", "PinStore"]


def __getattr__(name: str) -> Any:
    if name == "OperatorScreen":
        from kiosk.ui.operator.screen import OperatorScreen

        return OperatorScreen
    if name == "PinDialog":
        from kiosk.ui.operator.pin import PinDialog

        return PinDialog
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
