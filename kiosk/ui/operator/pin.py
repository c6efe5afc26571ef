"""The PIN dialogs: a big keypad for the touch screen (keys work too) in front of the operator screen, and the
System page's 修改密码 (current PIN, then the new one twice).

With no PIN set yet :class:`PinDialog` prints a one-time setup code on the console (the journal under systemd),
never on the screen, and asks for it; only after the right code may the person choose a PIN and type
it again (see :mod:`kiosk.ui.operator.pinstore`). ``exec_()`` returns ``QDialog.Accepted`` only for
the right PIN (or a new PIN just set).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, Dict, Optional

from PyQt5.QtCore import QRegExp, Qt, QTimer
from PyQt5.QtGui import QKeyEvent, QRegExpValidator
from PyQt5.QtWidgets import QDialog, QGridLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from kiosk.ui.operator.pinstore import MAX_TRIES, SETUP_DIGITS, SETUP_VALID_S, PinResult, PinStore, validate_pin
from kiosk.ui.operator.widgets import STYLE, cjk_font, set_role

log = logging.getLogger(__name__)

KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "back")


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def print_setup_code(code: str, expires: float) -> None:
    """Tell whoever reads the console (``journalctl -u dabai-kiosk`` under systemd) the setup code."""
    print("dabai-kiosk: operator setup code {} (single use, valid until {}): type it on the kiosk screen, then "
          "choose the operator PIN; or run dabai-kiosk operator set-pin".format(code, _clock(expires)),
          file=sys.stderr, flush=True)


class KeypadDialog(QDialog):
    """A prompt, a hidden entry of up to 8 digits, a message line and a 3×4 keypad with 取消 and 确定; it shows
    the lockout of ``store`` (keypad off, counted down). Subclasses say what ``submit`` does with the digits."""

    def __init__(self, store: PinStore, title: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.store = store
        self.setWindowTitle(title)
        self.setFont(cjk_font())
        self.setStyleSheet(STYLE + "QPushButton[key=\"true\"] { font-size: 26px; min-width: 92px; min-height: 62px; }")
        self.setModal(True)

        self.prompt = QLabel()
        self.prompt.setAlignment(Qt.AlignCenter)
        set_role(self.prompt, "title")
        self.entry = QLineEdit()
        self.entry.setEchoMode(QLineEdit.Password)
        self.entry.setAlignment(Qt.AlignCenter)
        self.entry.setMaxLength(8)
        self.entry.setValidator(QRegExpValidator(QRegExp("[0-9]{0,8}"), self.entry))
        self.entry.setStyleSheet("font-size: 30px; min-height: 52px; letter-spacing: 8px;")
        self.entry.returnPressed.connect(self.submit)
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignCenter)
        self.message.setWordWrap(True)
        set_role(self.message, "hint")

        pad = QGridLayout()
        pad.setSpacing(8)
        self.buttons: Dict[str, QPushButton] = {}
        for i, key in enumerate(KEYS):
            text = {"clear": "清除\nClear", "back": "⌫"}.get(key, key)
            button = QPushButton(text)
            button.setProperty("key", True)
            button.setFocusPolicy(Qt.NoFocus)
            button.clicked.connect(lambda _=False, k=key: self.press(k))
            self.buttons[key] = button
            pad.addWidget(button, i // 3, i % 3)
        self.ok_button = QPushButton("确定 OK")
        self.ok_button.setProperty("accent", True)
        self.ok_button.setProperty("key", True)
        self.ok_button.setFocusPolicy(Qt.NoFocus)
        self.ok_button.clicked.connect(self.submit)
        self.cancel_button = QPushButton("取消 Cancel")
        self.cancel_button.setProperty("key", True)
        self.cancel_button.setFocusPolicy(Qt.NoFocus)
        self.cancel_button.clicked.connect(self.reject)
        pad.addWidget(self.cancel_button, 4, 0)
        pad.addWidget(self.ok_button, 4, 1, 1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.addWidget(self.prompt)
        layout.addWidget(self.entry)
        layout.addWidget(self.message)
        layout.addLayout(pad)

        self.ticker = QTimer(self)  # counts a lock down and unlocks the keypad when it ends
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._refresh_lock)
        self._locked_until: Optional[float] = None

    # input

    def press(self, key: str) -> None:
        """One keypad button: a digit, ``clear`` or ``back``."""
        if key == "clear":
            self.entry.clear()
        elif key == "back":
            self.entry.backspace()
        elif len(self.entry.text()) < 8:
            self.entry.setText(self.entry.text() + key)

    def type_digits(self, digits: str) -> None:
        """Press each digit, then 确定 (tests, and a keyboard's paste)."""
        for key in digits:
            self.press(key)
        self.submit()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key_Escape:
            self.reject()
            return
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            self.submit()
            return
        super().keyPressEvent(event)

    def submit(self) -> None:
        pin = self.entry.text()
        if not pin:  # Return reaches both the entry and the dialog; an empty entry is no attempt
            return
        self.entry.clear()
        self.digits(pin)

    def digits(self, text: str) -> None:
        """What the dialog does with one entry (a subclass's)."""
        raise NotImplementedError

    def _reset_prompt(self) -> None:
        """The prompt and hint of the current stage (a subclass's)."""

    # showing the state

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        set_role(self.message, "error" if error else "hint")

    def _show(self, result: PinResult, wrong: bool = False, zh: str = "密码", en: str = "PIN") -> None:
        if result.error:
            self._say("无法验证{} The {} cannot be checked: {}".format(zh, en, result.error), error=True)
            self._set_locked(None)
        elif result.locked_until is not None:
            self._set_locked(result.locked_until)
        else:
            self._set_locked(None)
            tries = "{} try left".format(result.tries_left) if result.tries_left == 1 else \
                "{} tries left".format(result.tries_left)
            if wrong:
                self._say("{}错误，还可尝试 {} 次 Wrong {}: {}".format(zh, result.tries_left, en, tries), error=True)
            elif result.tries_left < MAX_TRIES:
                self._say("还可尝试 {} 次 {}".format(result.tries_left, tries))

    def _set_locked(self, until: Optional[float]) -> None:
        self._locked_until = until
        locked = until is not None
        for button in self.buttons.values():
            button.setEnabled(not locked)
        self.ok_button.setEnabled(not locked)
        self.entry.setEnabled(not locked)
        if locked:
            self._say("输错次数过多，已锁定至 {}。到时可再试；忘记密码请联系物业管理员或安装人员重设。\n"
                      "Too many wrong PINs: locked until {}. Try again then; if the PIN is forgotten, ask the property "
                      "manager or installer to reset it.".format(_clock(until), _clock(until)), error=True)  # type: ignore
            self.ticker.start()
        else:
            self.ticker.stop()

    def _refresh_lock(self) -> None:
        result = self.store.status()
        if result.locked_until is None:
            self._set_locked(None)
            self._reset_prompt()
            self._unlocked()

    def _unlocked(self) -> None:
        """Said when a lock has just ended."""

    @property
    def locked(self) -> bool:
        return self._locked_until is not None


class PinDialog(KeypadDialog):
    """Asks for the operator PIN; when none is set, for the setup code printed on the console, then for a new PIN
    twice. ``stage`` is ``pin``, ``code`` or ``choose``; ``announce(code, expires)`` prints the setup code."""

    def __init__(self, store: PinStore, parent: Optional[QWidget] = None,
                 announce: Callable[[str, float], None] = print_setup_code) -> None:
        super().__init__(store, "运维密码 Operator PIN", parent)
        self.setup_mode = not store.is_set()
        self.stage = "code" if self.setup_mode else "pin"
        self._first: Optional[str] = None  # the new PIN typed once (choose stage)
        if self.setup_mode:
            try:
                announce(*store.new_setup_code())
            except (OSError, ValueError) as exc:  # a PIN set meanwhile, or the state folder not writable
                print("dabai-kiosk: no operator setup code: {}".format(exc), file=sys.stderr, flush=True)
        self._reset_prompt()
        self._show(store.status())

    def digits(self, pin: str) -> None:
        if self.stage == "choose":
            self._choose(pin)
            return
        if self.stage == "code":
            result = self.store.use_setup_code(pin)
            if result.ok:
                self.stage = "choose"
                self._reset_prompt()
                return
        else:
            result = self.store.check(pin)
            if result.ok:
                self.accept()
                return
        self._show(result, wrong=True)

    # choosing a PIN

    def _choose(self, pin: str) -> None:
        if self._first is None:
            try:
                self._first = validate_pin(pin)
            except ValueError as exc:
                self._say(str(exc), error=True)
                return
            self._say("请再输入一次确认 Type it again to confirm")
            self.prompt.setText("确认运维密码 Confirm the PIN")
            return
        first, self._first = self._first, None
        if pin != first:
            self._reset_prompt()
            self._say("两次输入不一致，请重新设置 The two PINs differ; choose again", error=True)
            return
        self.store.set_pin(pin)
        self.accept()

    def _reset_prompt(self) -> None:
        if self.stage == "code":
            self.prompt.setText("请输入设置码 Enter the setup code")
            self._say("尚未设置运维密码：请输入控制台（系统日志）上显示的 {n} 位设置码，{m} 分钟内有效；"
                      "看不到控制台请联系安装人员。\nNo operator PIN yet: type the {n}-digit setup code printed on the "
                      "console (system journal), valid {m} minutes; the installer can read it."
                      .format(n=SETUP_DIGITS, m=int(SETUP_VALID_S // 60)))
        elif self.stage == "choose":
            self.prompt.setText("设置运维密码 Choose an operator PIN")
            self._say("请输入 4–8 位数字 Choose 4–8 digits")
        else:
            self.prompt.setText("请输入运维密码 Operator PIN")
            self._say("")

    def _show(self, result: PinResult, wrong: bool = False, zh: str = "密码", en: str = "PIN") -> None:
        if self.stage == "code":
            zh, en = "设置码", "setup code"
        super()._show(result, wrong, zh, en)

    def _unlocked(self) -> None:
        if self.stage == "pin":
            self._say("已解锁，请输入密码 Unlocked: enter the PIN")


class ChangePinDialog(KeypadDialog):
    """修改密码: the current PIN (a wrong one counts toward the lockout, as at the PIN dialog), then the new PIN
    twice. ``stage`` is ``current``, ``new`` or ``confirm``; accepted once the new PIN is stored."""

    def __init__(self, store: PinStore, parent: Optional[QWidget] = None) -> None:
        super().__init__(store, "修改运维密码 Change the operator PIN", parent)
        self.stage = "current"
        self._new: Optional[str] = None
        self._reset_prompt()
        self._show(store.status())

    def digits(self, pin: str) -> None:
        if self.stage == "current":
            result = self.store.check(pin)
            if not result.ok:
                self._show(result, wrong=True, zh="当前密码", en="current PIN")
                return
            self.stage = "new"
            self._reset_prompt()
        elif self.stage == "new":
            try:
                self._new = validate_pin(pin)
            except ValueError as exc:
                self._say(str(exc), error=True)
                return
            self.stage = "confirm"
            self._reset_prompt()
        else:
            self._confirm(pin)

    def _confirm(self, pin: str) -> None:
        new, self._new = self._new, None
        if pin != new:
            self.stage = "new"
            self._reset_prompt()
            self._say("两次输入不一致，请重新输入新密码 The two PINs differ; type the new PIN again", error=True)
            return
        try:
            self.store.set_pin(pin)
        except (OSError, ValueError) as exc:
            self.stage = "new"
            self._reset_prompt()
            log.error("operator PIN not changed: %s", exc)
            self._say("新密码未能保存，请检查数据目录的磁盘空间后重试\nThe new PIN could not be saved: check the data "
                      "folder's free space and try again", error=True)
            return
        self.accept()

    def _reset_prompt(self) -> None:
        if self.stage == "current":
            self.prompt.setText("请输入当前密码 Current PIN")
            self._say("修改运维密码：先输入当前密码 To change the operator PIN, enter the current one first")
        elif self.stage == "new":
            self.prompt.setText("请输入新密码 New PIN")
            self._say("请输入 4–8 位数字 Choose 4–8 digits")
        else:
            self.prompt.setText("再次输入新密码 Confirm the new PIN")
            self._say("请再输入一次确认 Type it again to confirm")

    def _unlocked(self) -> None:
        if self.stage == "current":
            self._say("已解锁，请输入当前密码 Unlocked: enter the current PIN")
