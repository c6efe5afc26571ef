"""The operator's journey, end to end, by taps only: what a new front-desk person does on the 1024x600 panel.

``python -m kiosk.ui.journey --out DIR`` (or ``dabai-kiosk screenshots --journey``) opens the kiosk window on
a fresh data home, long-presses the corner, types the console's setup code and a new PIN on the keypad, adds
张三 through the on-screen pinyin keyboard, issues and prints a pass (to a PDF), revokes it through the
confirmation, changes a policy setting, reads the access log and restarts the kiosk from the System page.
Every step is a tap on a widget (a mouse press and release, which is what Qt makes of a touch), never a
method call, and a screenshot of the whole screen (dialogs included) is written to ``DIR``. It prints one
JSON line per step and a summary; it runs on any Qt platform (the test runs it under Xvfb).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

SIZE = (1024, 600)


class Journey:
    def __init__(self, out: Path, home_dir: Path) -> None:
        from PyQt5.QtWidgets import QApplication

        from kiosk.config import Config, Home, save_config
        from kiosk.ui.bridge import Metrics, UiBridge
        from kiosk.ui.fonts import use_cjk_font
        from kiosk.ui.theme import apply_theme
        from kiosk.ui.window import KioskWindow

        self.app = QApplication.instance() or QApplication(["dabai-journey"])
        apply_theme(self.app)
        use_cjk_font(self.app)
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.home = Home(home_dir)
        self.home.root.mkdir(parents=True, exist_ok=True)
        save_config(Config(), self.home.config)
        self.steps: List[Dict[str, Any]] = []
        self.shots: List[Path] = []
        self.bridge = UiBridge()
        self.window = KioskWindow(self.bridge, Config().policy, metrics=Metrics(), hold_ms=600)
        self.window.resize(*SIZE)
        self.window.move(0, 0)
        self.window.show()
        self.restarts: List[str] = []
        self.controller = self._controller()

    def _controller(self) -> Any:
        """The app's own controller code for the operator screen (PIN dialog, screen, saving, recording)."""
        from kiosk.runtime.assemble import open_store
        from kiosk.ui.app import _Controller

        store = open_store(self.home, writer=True)
        self.store = store
        journey = self

        class Controller(_Controller):  # the live controller's operator-screen code, with this home's store
            def status(self) -> Dict[str, Any]:
                return {"fps": 15.0, "camera": "ok", "gate": "sim"}

            def apply_config(self, config: Any) -> List[str]:
                from kiosk.ui.app import changed_sections

                changed, self.config = changed_sections(self.config, config), config
                return changed

            def request_restart(self) -> None:  # the app would stop and start again; the journey notes it
                journey.restarts.append("restart")

        from types import SimpleNamespace

        from kiosk.config import load_config
        from kiosk.ui.bridge import Metrics

        controller = Controller(self.home, load_config(self.home.config), self.bridge, self.window, Metrics())
        controller.parts = SimpleNamespace(store=store)  # operator actions go to this access log
        self.window.operator_requested.connect(controller.open_operator)
        return controller

    # ---- taps and looks -----------------------------------------------------------------------

    def settle(self, ms: int = 120) -> None:
        from PyQt5.QtTest import QTest

        QTest.qWait(ms)

    def tap(self, widget: Any) -> None:
        from PyQt5.QtCore import Qt
        from PyQt5.QtTest import QTest
        from PyQt5.QtWidgets import QScrollArea

        if widget is None or not widget.isVisible() or not widget.isEnabled():
            raise RuntimeError("cannot tap {!r}: not visible or not enabled".format(getattr(widget, "text", lambda: widget)()))
        parent = widget.parent()
        while parent is not None:  # a person scrolls the panel until the control is in view, then taps it
            if isinstance(parent, QScrollArea):
                parent.ensureWidgetVisible(widget)
                self.settle(30)
            parent = parent.parent()
        QTest.mouseClick(widget, Qt.LeftButton)
        self.settle(60)

    def hold(self, widget: Any, ms: int) -> None:
        from PyQt5.QtCore import Qt
        from PyQt5.QtTest import QTest

        QTest.mousePress(widget, Qt.LeftButton)
        QTest.qWait(ms)
        QTest.mouseRelease(widget, Qt.LeftButton)
        self.settle()

    def on_modal(self, act: Callable[[Any], None], delay_ms: int = 250) -> None:
        """Run ``act(dialog)`` on the modal dialog that the next tap opens (its event loop is running then)."""
        from PyQt5.QtCore import QTimer
        from PyQt5.QtWidgets import QApplication

        def go() -> None:
            dialog = QApplication.activeModalWidget()
            if dialog is None:
                QTimer.singleShot(100, go)
                return
            act(dialog)

        QTimer.singleShot(delay_ms, go)

    def shot(self, name: str) -> Path:
        from PyQt5.QtWidgets import QApplication

        self.settle()
        screen = QApplication.primaryScreen()
        pixmap = screen.grabWindow(0, 0, 0, SIZE[0], SIZE[1]) if QApplication.platformName() == "xcb" else None
        if pixmap is None or pixmap.isNull():
            modal = QApplication.activeModalWidget()
            pixmap = (modal or self.window).grab()
        path = self.out / "operator-journey-{:02d}-{}.png".format(len(self.shots) + 1, name)
        pixmap.save(str(path))
        self.shots.append(path)
        return path

    def step(self, name: str, ok: bool, **detail: Any) -> None:
        entry = dict(step=name, ok=bool(ok), **detail)
        self.steps.append(entry)
        print(json.dumps(entry, ensure_ascii=False), flush=True)
        if not ok:
            raise RuntimeError("journey step {} failed: {}".format(name, detail))

    def has_button(self, root: Any, starts: str) -> bool:
        try:
            self.button(root, starts)
        except RuntimeError:
            return False
        return True

    def button(self, root: Any, starts: str) -> Any:
        from PyQt5.QtWidgets import QAbstractButton

        found = [b for b in root.findChildren(QAbstractButton) if b.text().replace("\n", " ").startswith(starts)
                 and b.isVisible()]
        if not found:
            raise RuntimeError("no button starting with {!r}".format(starts))
        return found[0]

    # ---- the journey --------------------------------------------------------------------------

    def run(self) -> int:
        self.settle(300)
        self.shot("kiosk")
        self.open_screen()
        self.add_resident()
        self.issue_and_print()
        self.revoke()
        self.change_policy()
        self.read_log()
        self.restart()
        return 0

    def open_screen(self) -> None:
        """Long press the corner; no PIN is set yet: the setup code from the console, then a new PIN twice."""
        printed = io.StringIO()
        with contextlib.redirect_stderr(printed):  # the console, where an installer reads the setup code
            self.hold(self.window.hotspot, 800)
        dialog = self.controller._pin_dialog
        match = re.search(r"setup code (\d+)", printed.getvalue())
        self.step("long_press_opens_the_pin_dialog", dialog is not None and match is not None)
        self.shot("setup-code")
        for key in match.group(1):  # type: ignore[union-attr]
            self.tap(dialog.buttons[key])
        self.tap(dialog.ok_button)
        for _ in range(2):
            for key in "2468":
                self.tap(dialog.buttons[key])
            if _ == 0:
                self.shot("choose-pin")
            self.tap(dialog.ok_button)
        self.settle(300)
        screen = self.window.operator
        self.screen = screen
        self.step("pin_set_and_screen_open", screen is not None and screen.isVisible())
        self.shot("residents")

    def add_resident(self) -> None:
        page = self.screen.pages["residents"]
        keyboard = self.screen.keyboard
        self.tap(page.name_edit)
        for letter in "zhangsan":
            self.tap(keyboard.key(letter))
        self.shot("keyboard-pinyin")
        self.tap(keyboard.candidate_button("张三"))
        self.tap(page.unit_edit)
        for key in "3-201":
            self.tap(keyboard.key(key))
        self.shot("keyboard-digits")
        self.tap(page.add_button)
        residents = [(r.name, r.unit) for r in page.registry.list()]
        self.step("resident_added_by_keyboard", residents == [("张三", "3-201")], residents=residents)
        self.shot("resident-added")

    def issue_and_print(self) -> None:
        from PyQt5.QtPrintSupport import QPrinter

        page = self.screen.pages["residents"]
        self.tap(page.issue_button)
        self.step("pass_issued", page.card is not None and page.card_resident == 1)
        self.shot("pass-issued")
        pdf = (self.home.root.parent / "printed-pass.pdf").resolve()  # beside the throwaway home, not the pictures
        if pdf.exists():
            pdf.unlink()  # else the print dialog asks whether to replace it

        def to_pdf(dialog: Any) -> None:  # the system's print dialog: print to a PDF file (no printer here)
            from PyQt5.QtWidgets import QLineEdit

            name = dialog.findChild(QLineEdit, "filename")
            if name is None:  # another platform's dialog: the same through its printer
                dialog.printer().setOutputFormat(QPrinter.PdfFormat)
                dialog.printer().setOutputFileName(str(pdf))
            else:
                name.setText(str(pdf))
            self.shot("print-dialog")
            self.tap(self.button(dialog, "打印") if self.has_button(dialog, "打印") else self.button(dialog, "&Print"))

        self.on_modal(to_pdf)
        self.tap(page.print_button)
        self.settle(500)
        self.step("pass_printed", pdf.exists() and pdf.stat().st_size > 1000, pdf=str(pdf))

    def revoke(self) -> None:
        from PyQt5.QtCore import Qt
        from PyQt5.QtTest import QTest

        page = self.screen.pages["residents"]
        row = page.passes.visualItemRect(page.passes.item(0))  # tap the pass in the list
        QTest.mouseClick(page.passes.viewport(), Qt.LeftButton, pos=row.center())
        self.settle()
        asked: List[str] = []

        def confirm(dialog: Any) -> None:
            asked.append(dialog.text())
            self.shot("revoke-confirm")
            self.tap(self.button(dialog, "注销"))

        self.on_modal(confirm)
        self.tap(page.revoke_pass_button)
        self.settle(300)
        revoked = page.registry.passes_of(1)[0].revoked_at is not None
        self.step("pass_revoked_after_confirmation", revoked and bool(asked) and "张三" in asked[0], asked=asked)
        self.shot("pass-revoked")

    def change_policy(self) -> None:
        self.tap(self.screen.buttons["policy"])
        page = self.screen.pages["policy"]
        field = page.form.inputs["cooldown_s"]
        self.tap(field)
        keyboard = self.screen.keyboard
        for _ in range(len(field.text())):
            self.tap(keyboard.key("backspace"))
        for key in "3.5":
            self.tap(keyboard.key(key))
        self.shot("policy-edit")
        self.tap(page.save_button)
        from kiosk.config import load_config

        saved = load_config(self.home.config).policy.cooldown_s
        self.step("policy_saved", saved == 3.5, cooldown_s=saved)
        self.shot("policy-saved")

    def read_log(self) -> None:
        self.tap(self.screen.buttons["log"])
        page = self.screen.pages["log"]
        self.settle(600)
        rows = page.table.rowCount()
        self.step("log_shows_operator_actions", rows >= 4, rows=rows)
        self.shot("log")

    def restart(self) -> None:
        self.tap(self.screen.buttons["system"])
        page = self.screen.pages["system"]
        self.settle(300)
        self.shot("system")

        def confirm(dialog: Any) -> None:
            self.shot("restart-confirm")
            self.tap(self.button(dialog, "重启"))

        self.on_modal(confirm)
        self.tap(self.button(page, "重启程序"))
        self.settle(300)
        self.step("restart_requested", bool(self.restarts), restarts=self.restarts)

    def close(self) -> None:
        if self.window.operator is not None:
            self.window.operator.close_screen()
        self.window.close()
        self.store.close()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/journey", help="folder for the screenshots")
    ap.add_argument("--format", choices=("png", "jpg"), default="png")
    args = ap.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="dabai-journey-") as tmp:
        journey = Journey(out, Path(tmp) / "home")
        started = time.monotonic()
        try:
            journey.run()
        finally:
            journey.close()
        if args.format == "jpg":
            from PIL import Image

            for path in list(journey.shots):
                Image.open(str(path)).convert("RGB").save(str(path.with_suffix(".jpg")), quality=82, optimize=True)
                path.unlink()
        print(json.dumps({"steps": len(journey.steps), "ok": all(s["ok"] for s in journey.steps),
                          "screenshots": len(journey.shots), "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
