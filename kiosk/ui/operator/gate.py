"""Gate page: 远程开门 (open the gate for someone, with a reason, written into the access log first), the relay
driver, pin or port, pulse length, and a test button that pulses the gate (recorded too)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional

from PyQt5.QtWidgets import QButtonGroup, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from kiosk.config import GateConfig
from kiosk.ui.operator.widgets import ConfigForm, Note, Page, confirm, heading, hint, run_in_background, save_forms

log = logging.getLogger(__name__)

GATE_LABELS = {
    "driver": "驱动",
    "pulse_ms": "开闸时长（毫秒）",
    "gpio_pin": "继电器引脚",
    "active_low": "低电平触发（继电器板）",
    "modbus_address": "Modbus 地址",
    "modbus_coil": "Modbus 线圈",
    "wiegand": "韦根输出",
    "serial_port": "串口",
    "serial_open_hex": "开闸指令（十六进制）",
    "serial_close_hex": "关闸指令（十六进制）",
}

# Reasons for a remote open: (key, label). The access log keeps the Chinese word, plus what the operator typed.
REASONS = (("visitor", "访客 Visitor"), ("delivery", "快递 Delivery"), ("maintenance", "维修 Maintenance"),
           ("other", "其他 Other"))
REASON_MAX = 64  # characters of free text, as a resident's name
BIG = 60  # px: the remote-open buttons are pressed on the touch panel

# Pins of the Jetson 40-pin header that are power or ground, never a relay output (BOARD numbering).
POWER_PINS = (1, 2, 4, 6, 9, 14, 17, 20, 25, 30, 34, 39)


def gate_problems(values: dict, saved: GateConfig) -> List[str]:
    """What the config rules cannot see: power pins, command bytes that are not hex, a serial port that
    does not exist (checked only when the port or driver was changed, so a relay unplugged for now does
    not block saving the other settings)."""
    problems = []
    pin = values.get("gpio_pin")
    if isinstance(pin, int) and pin in POWER_PINS:
        problems.append("gate.gpio_pin = {}: pin {} is a power or ground pin, not a GPIO".format(pin, pin))
    for key in ("serial_open_hex", "serial_close_hex"):
        text = values.get(key, "")
        try:
            if not bytes.fromhex(str(text)):
                problems.append("gate.{} = {!r}: must not be empty".format(key, text))
        except ValueError:
            problems.append("gate.{} = {!r}: must be hex bytes such as A00101A2".format(key, text))
    port = str(values.get("serial_port", ""))
    changed = port != saved.serial_port or (values.get("driver") == "serial" and saved.driver != "serial")
    if values.get("driver") == "serial" and changed and not os.path.exists(port):
        problems.append("gate.serial_port = {!r}: no such device (is the USB relay plugged in?)".format(port))
    return problems


def pulse_gate(config: GateConfig, lent: Any = None) -> str:
    """Pulse the gate once with ``config`` (the app's own driver ``lent`` when given); says what happened.

    Runs on a worker thread: opening a serial port or GPIO can take a moment."""
    from kiosk.gate.drivers import open_gate_driver

    if lent is not None:
        if not lent.pulse(config.pulse_ms):
            raise RuntimeError("the relay did not open (see the log)")
        return "已开闸 {} 毫秒 Pulsed {} ms ({})".format(config.pulse_ms, config.pulse_ms, getattr(lent, "name", "gate"))
    driver = open_gate_driver(config)  # GateUnavailable says why and how to fix it
    try:
        if not driver.pulse(config.pulse_ms):
            raise RuntimeError("the relay did not open (see the log)")
        time.sleep(config.pulse_ms / 1000.0 + 0.05)
    finally:
        driver.close()
    return "已开闸 {} 毫秒 Pulsed {} ms ({})".format(config.pulse_ms, config.pulse_ms, driver.name)


def remote_reason(preset: str, text: str) -> str:
    """The reason written into the access log (``快递`` or ``快递: 3 号楼``); ValueError saying what is missing."""
    text = " ".join(text.split())
    if any(ord(c) < 32 for c in text):
        raise ValueError("原因不能含控制字符 The reason must not contain control characters")
    if len(text) > REASON_MAX:
        raise ValueError("原因太长（最多 {} 个字） The reason is too long (at most {})".format(REASON_MAX, REASON_MAX))
    word = dict(REASONS).get(preset, "").split(" ")[0]
    if not word and not text:
        raise ValueError("请选择或填写开门原因 Choose or type a reason")
    if preset == "other" and not text:
        raise ValueError("选择「其他」时请填写原因 With 其他 Other, type the reason")
    if preset == "other":
        return text
    return "{}: {}".format(word, text) if word and text else (word or text)


class GatePage(Page):
    name = "gate"
    title = "闸机 Gate"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.form = ConfigForm("gate", labels=GATE_LABELS)
        self.note = Note()
        self.test_note = Note()
        self.save_button = QPushButton("保存并应用 Save")
        self.save_button.setProperty("accent", True)
        self.save_button.clicked.connect(self.save)
        self.test_button = QPushButton("测试开闸 Test pulse")
        self.test_button.clicked.connect(self.test_pulse)
        self.last_test: Optional[str] = None
        self.last_open: Optional[str] = None  # "ok", "error" or "refused" once a remote open has finished

        self.reason_buttons: Dict[str, QPushButton] = {}
        self.reason_group = QButtonGroup(self)
        self.reason_group.setExclusive(True)
        presets = QHBoxLayout()
        for key, label in REASONS:
            button = QPushButton(label.replace(" ", "\n", 1))
            button.setCheckable(True)
            button.setMinimumHeight(BIG)
            self.reason_group.addButton(button)
            self.reason_buttons[key] = button
            presets.addWidget(button)
        self.reason_text = QLineEdit()
        self.reason_text.setPlaceholderText("补充说明（可选；选「其他」时必填）Details (optional; needed with 其他 Other)")
        self.reason_text.setMaxLength(REASON_MAX * 2)  # longer is refused with a message, not cut silently
        self.open_button = QPushButton("远程开门 Open the gate")
        self.open_button.setProperty("accent", True)
        self.open_button.setMinimumHeight(BIG)
        self.open_button.clicked.connect(self.remote_open)
        self.open_note = Note()

        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(heading("远程开门 Remote open"))
        column.addWidget(hint("为访客、快递或维修人员开一次门：选择原因后按「远程开门」，会记入通行记录。\n"
                              "Opens the gate once for a visitor, a courier or a repairer; recorded in the access log."))
        column.addLayout(presets)
        column.addWidget(self.reason_text)
        opening = QHBoxLayout()
        opening.addWidget(self.open_button)
        opening.addWidget(self.open_note, 1)
        column.addLayout(opening)
        column.addWidget(heading("闸机继电器 Gate relay"))
        column.addWidget(hint("sim = 模拟 simulated; gpio = Jetson 40 针 BOARD 引脚; serial = USB 串口继电器 relay board; "
                             "modbus = RS485 Modbus RTU 继电器板"))
        column.addWidget(self.form)
        test = QHBoxLayout()
        test.addWidget(self.test_button)
        test.addWidget(self.test_note, 1)
        column.addLayout(test)
        column.addStretch(1)
        self.lay_out(body, self.note, self.save_button)
        self.form.load(ctx.config)

    def on_show(self) -> None:
        self.form.load(self.ctx.config)

    def _problems(self) -> List[str]:
        return gate_problems(self.form.values(), self.ctx.config.gate)

    def save(self) -> bool:
        return save_forms(self.ctx, [self.form], self._problems(), note=self.note)

    # ---- remote open ---------------------------------------------------------------------------------------

    def chosen_reason(self) -> str:
        """The preset checked (``REASONS`` key) or ""."""
        button = self.reason_group.checkedButton()
        return next((key for key, b in self.reason_buttons.items() if b is button), "")

    def choose_reason(self, key: str, text: str = "") -> None:
        """Check a preset (tests, and a touch on its button) and set the free text."""
        self.reason_buttons[key].setChecked(True)
        self.reason_text.setText(text)

    def _app_gate(self) -> Any:
        """The gate the app drives now (None without an app: the saved settings' driver is opened)."""
        if self.ctx.gate is None:
            return None
        return self.ctx.gate if hasattr(self.ctx.gate, "pulse") else self.ctx.gate()

    def remote_open(self) -> bool:
        """Open the gate once for someone: a reason, a confirmation, a durable access-log record, then the pulse
        (as for a resident: no record, no opening). True when the pulse was started."""
        try:
            reason = remote_reason(self.chosen_reason(), self.reason_text.text())
        except ValueError as exc:
            self.last_open = "refused"
            self.open_note.error(str(exc))
            return False
        gate = self.ctx.config.gate
        if not confirm(self, "远程开门？\n原因：{}".format(reason), "开门 Open",
                       "The gate opens once for {} ms and the opening is written into the access log.".format(
                           gate.pulse_ms)):
            return False
        if not self.ctx.record("remote_open", reason, gate_opened=True):
            self.last_open = "refused"
            self.open_note.error("通行记录无法写入，未开门：请检查磁盘空间，或运行 dabai-kiosk doctor\n"
                                 "Not opened: the access log cannot be written")
            return False
        lent = self._app_gate()
        self.open_button.setEnabled(False)
        self.open_note.busy("正在开门… Opening…")
        run_in_background(lambda: pulse_gate(gate, lent), lambda result, error: self._opened(reason, result, error))
        return True

    def _opened(self, reason: str, result: Optional[str], error: Optional[BaseException]) -> None:
        self.open_button.setEnabled(True)
        if error is not None:
            log.error("remote open (%s) failed: %s", reason, error)
            self.last_open = "error"
            self.ctx.record("remote_open_failed", reason)
            self.open_note.error("开门失败：请检查继电器接线和下方的闸机设置（详情见日志）\n"
                                 "The gate did not open: check the relay wiring and the settings below")
            return
        self.last_open = "ok"
        self.open_note.ok("已开门（{}） Opened".format(reason))
        self.reason_group.setExclusive(False)  # the next opening asks for its own reason
        for button in self.reason_buttons.values():
            button.setChecked(False)
        self.reason_group.setExclusive(True)
        self.reason_text.clear()

    # ---- test pulse ----------------------------------------------------------------------------------------

    def test_pulse(self) -> None:
        """Pulse the gate with the settings on the form (validated first, not saved)."""
        self.form.clear_problems()
        candidate, problems = self.ctx.check({"gate": self.form.values()})
        problems = self._problems() + problems + self.form.text_problems()
        if problems or candidate is None:
            rest = self.form.show_problems(problems)
            self.test_note.error("设置有误，未测试 Not tested: fix the settings first{}".format(
                "".join("\n" + p for p in rest)))
            return
        gate = candidate.gate
        lent = None
        if self.ctx.gate is not None and gate == self.ctx.config.gate:  # the relay the app drives now
            lent = self._app_gate()
        self.ctx.record("gate_test", "{} ms".format(gate.pulse_ms), gate_opened=True)  # before: it opens the gate
        self.test_button.setEnabled(False)
        self.test_note.busy("正在开闸… Pulsing…")
        run_in_background(lambda: pulse_gate(gate, lent), self._tested)

    def _tested(self, result: Optional[str], error: Optional[BaseException]) -> None:
        self.test_button.setEnabled(True)
        if error is not None:
            self.last_test = "error"
            self.ctx.record("gate_test_failed")
            self.test_note.error("开闸失败 Gate test failed: {}".format(error))
        else:
            self.last_test = "ok"
            self.test_note.ok(str(result))

