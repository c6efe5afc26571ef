"""Gate page: relay driver, pin or port, pulse length, and a test button that pulses the gate."""

from __future__ import annotations

import os
import time
from typing import Any, List, Optional

from PyQt5.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from kiosk.config import GateConfig
from kiosk.ui.operator.widgets import ConfigForm, Note, Page, heading, hint, run_in_background, save_forms

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

        body = QWidget()
        column = QVBoxLayout(body)
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
            lent = self.ctx.gate if hasattr(self.ctx.gate, "pulse") else self.ctx.gate()
        self.test_button.setEnabled(False)
        self.test_note.busy("正在开闸… Pulsing…")
        run_in_background(lambda: pulse_gate(gate, lent), self._tested)

    def _tested(self, result: Optional[str], error: Optional[BaseException]) -> None:
        self.test_button.setEnabled(True)
        if error is not None:
            self.last_test = "error"
            self.test_note.error("开闸失败 Gate test failed: {}".format(error))
        else:
            self.last_test = "ok"
            self.test_note.ok(str(result))

