"""Gate drivers: pulses are timed, closed is the state after every error."""

from __future__ import annotations

import time

import pytest

from kiosk.config import GateConfig
from kiosk.gate.drivers import GateDriver, GateUnavailable, SimulatedGate, open_gate_driver


def test_simulated_pulse_opens_then_closes():
    gate = SimulatedGate()
    assert gate.pulse(60)
    assert gate.is_open and gate.pulses[0][1] == 60
    time.sleep(0.25)
    assert not gate.is_open


def test_failing_relay_reports_and_stays_closed():
    gate = SimulatedGate(fail=True)
    assert gate.pulse(100) is False
    assert not gate.is_open


class HalfBroken(GateDriver):
    name = "half"

    def __init__(self):
        super().__init__()
        self.level = 0
        self.closes = 0

    def _energise(self):
        self.level = 1
        raise OSError("relay wire cut after switching")

    def _deenergise(self):
        self.level = 0
        self.closes += 1


def test_error_after_energising_forces_the_relay_closed():
    gate = HalfBroken()
    assert gate.pulse(100) is False
    assert gate.level == 0 and gate.closes == 1 and not gate.is_open


def test_close_cancels_a_pending_pulse():
    gate = SimulatedGate()
    gate.pulse(5000)
    gate.close()
    assert not gate.is_open


def test_unavailable_drivers_say_why():
    with pytest.raises(GateUnavailable, match="Jetson.GPIO"):
        open_gate_driver(GateConfig(driver="gpio"))
    with pytest.raises(GateUnavailable, match="pyserial|cannot open"):
        open_gate_driver(GateConfig(driver="serial", serial_port="/dev/does-not-exist"))
    assert isinstance(open_gate_driver(GateConfig()), SimulatedGate)
