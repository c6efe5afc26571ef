"""Gate drivers: pulses are timed, closed is the state after every error."""

from __future__ import annotations

import sys
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


# ---- a close that fails is retried, reported, and never reported as closed ---------------------------------


class FlakyRelay(GateDriver):
    """A relay whose close fails ``failures`` times (forever with None), then works."""

    name = "flaky"
    close_backoff_s = 0.01

    def __init__(self, failures=None):
        super().__init__()
        self.failures = failures
        self.energised = 0
        self.close_calls = 0

    def _energise(self):
        self.energised += 1

    def _deenergise(self):
        self.close_calls += 1
        if self.failures is None or self.close_calls <= self.failures:
            raise OSError("relay wire loose")


def test_a_close_that_fails_twice_then_works_is_retried():
    gate = FlakyRelay(failures=2)
    assert gate.drive_closed() is True
    assert gate.close_calls == 3 and gate.fault is None and gate.state == "closed" and not gate.is_open


def test_a_close_that_always_fails_is_a_fault_and_no_pulse_follows(caplog):
    gate = FlakyRelay(failures=None)
    gate.fault_retry_s = 30  # no background retry during this test
    assert gate.drive_closed() is False
    assert gate.state == "fault" and gate.is_open and "relay wire loose" in gate.fault
    assert "DID NOT CLOSE" in caplog.text
    assert gate.pulse(100) is False and gate.energised == 0  # refused: tried to close first, still failing
    assert gate.close() is False and gate.state == "fault"


def test_a_fault_is_retried_in_the_background_until_the_relay_closes():
    gate = FlakyRelay(failures=None)
    gate.fault_retry_s = 0.05
    assert gate.drive_closed() is False
    gate.failures = 0  # the wire is fixed
    deadline = time.monotonic() + 1.0
    while gate.state != "closed" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gate.state == "closed" and gate.fault is None
    assert gate.pulse(50) and gate.energised == 1  # pulses again once it closed
    gate.close()


def test_a_pulse_whose_release_fails_stays_open_and_faulted():
    gate = FlakyRelay(failures=0)
    gate.fault_retry_s = 30
    assert gate.pulse(30)
    gate.failures = None
    time.sleep(0.25)  # the timer's release fails three times
    assert gate.state == "fault" and gate.is_open
    gate.failures = 0
    assert gate.close() is True and gate.state == "closed"


def test_unusable_driver_stands_in_with_a_name_that_says_so():
    from kiosk.gate.drivers import UnavailableGate

    gate = UnavailableGate("serial", "cannot open gate relay port /dev/ttyUSB9")
    assert gate.name == "serial UNAVAILABLE" and gate.state == "unavailable"
    assert gate.pulse(100) is False and not gate.is_open


# ---- GPIO through a fake Jetson.GPIO (the real one only runs on a Jetson) ---------------------------------


class FakeGPIO:
    BOARD, OUT, HIGH, LOW = "BOARD", "OUT", 1, 0

    def __init__(self, stuck_high=False):
        self.levels = {}
        self.calls = []
        self.stuck_high = stuck_high

    def setwarnings(self, flag):
        self.calls.append(("setwarnings", flag))

    def setmode(self, mode):
        self.calls.append(("setmode", mode))

    def setup(self, pin, direction, initial=None):
        if pin not in (7, 11, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 26, 29, 31, 32, 33, 35, 36, 37, 38, 40):
            raise ValueError("Channel {} is invalid".format(pin))
        self.levels[pin] = initial

    def output(self, pin, level):
        self.levels[pin] = self.HIGH if self.stuck_high else level

    def input(self, pin):  # Jetson.GPIO reads back the level an output pin drives
        return self.levels[pin]

    def cleanup(self, pin=None):
        self.calls.append(("cleanup", pin))


@pytest.fixture
def fake_gpio(monkeypatch):
    import types

    gpio = FakeGPIO()
    package = types.ModuleType("Jetson")
    package.GPIO = gpio
    monkeypatch.setitem(sys.modules, "Jetson", package)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", gpio)
    return gpio


def test_gpio_pulse_reads_back_and_cleans_up(fake_gpio):
    gate = open_gate_driver(GateConfig(driver="gpio", gpio_pin=12, guardian=False))
    assert fake_gpio.levels[12] == 0 and gate.read_back() is False
    assert gate.pulse(5000) and fake_gpio.levels[12] == 1 and gate.read_back() is True
    assert gate.close() is True and fake_gpio.levels[12] == 0 and ("cleanup", 12) in fake_gpio.calls


def test_gpio_active_low_and_bad_pins(fake_gpio):
    gate = open_gate_driver(GateConfig(driver="gpio", gpio_pin=7, active_high=False, guardian=False))
    assert fake_gpio.levels[7] == 1 and gate.read_back() is False  # released = high for an active-low relay
    gate.close()
    with pytest.raises(GateUnavailable, match="gate.gpio_pin = 3"):
        open_gate_driver(GateConfig(driver="gpio", gpio_pin=3, guardian=False))


# ---- the gate section on its own, and the last good copy --------------------------------------------------


def test_gate_section_is_read_out_of_an_otherwise_broken_file(tmp_path):
    from kiosk.config import ConfigError
    from kiosk.gate.settings import load_gate_config

    path = tmp_path / "config.toml"
    path.write_text('[policy]\nmask_required = "maybe"\nnot toml at all ===\n[gate]\ndriver = "gpio"\ngpio_pin = 16\n'
                    '[camera]\nwidth = [\n', encoding="utf-8")
    gate = load_gate_config(path)
    assert gate.driver == "gpio" and gate.gpio_pin == 16
    path.write_bytes(b"\xff\xfe garbage \x00")
    with pytest.raises(ConfigError, match="no \\[gate\\] table"):
        load_gate_config(path)
    path.write_text("[gate]\npulse_ms = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="gate.pulse_ms = -1"):
        load_gate_config(path)


def test_a_corrupt_config_falls_back_to_the_last_good_gate_section(home):
    from kiosk.config import ConfigError
    from kiosk.gate.settings import save_last_good, usable_gate_config

    home.root.mkdir(parents=True)
    home.config.write_bytes(b"\x00\x01 corrupt")
    with pytest.raises(ConfigError, match="no saved copy"):
        usable_gate_config(home)
    save_last_good(home, GateConfig(driver="gpio", gpio_pin=18))
    config, notes = usable_gate_config(home)
    assert config.gpio_pin == 18 and "last used" in notes[0]
    home.config.unlink()  # gone altogether: the relay last used, not the defaults' simulated gate
    assert usable_gate_config(home)[0].gpio_pin == 18


# ---- config check: every gate setting against the driver it names -----------------------------------------


def _check(home, capsys, gate):
    from kiosk.cli import main
    from kiosk.config import Config, replace, save_config

    save_config(replace(Config(), "gate", **gate), home.config)
    code = main(["config", "check"])
    out, err = capsys.readouterr()
    return code, out, err


def test_config_check_fails_on_gate_settings_that_cannot_work_here(home, capsys, tmp_path):
    port = tmp_path / "ttyFAKE"
    port.write_text("")
    code, _, err = _check(home, capsys, {"driver": "serial", "serial_port": str(port), "serial_open_hex": "ZZ"})
    assert code == 2 and "gate.serial_open_hex = 'ZZ'" in err
    code, _, err = _check(home, capsys, {"driver": "serial", "serial_port": "/dev/ttyNOPE9"})
    assert code == 2 and "gate.serial_port = '/dev/ttyNOPE9': no such device" in err
    code, _, err = _check(home, capsys, {"driver": "gpio", "gpio_pin": 1})
    assert code == 2 and "gate.gpio_pin = 1" in err and "Jetson.GPIO" in err  # no Jetson.GPIO here
    code, _, err = _check(home, capsys, {"pulse_ms": 3000, "max_pulse_ms": 1000})
    assert code == 2 and "gate.pulse_ms = 3000" in err
    code, out, _ = _check(home, capsys, {"driver": "sim"})
    assert code == 0 and "SIMULATED" in out and "valid" in out


def test_config_check_accepts_gpio_with_the_library(home, capsys, fake_gpio):
    code, out, err = _check(home, capsys, {"driver": "gpio", "gpio_pin": 12})
    assert code == 0 and "valid" in out, err


# ---- dabai-kiosk gate close | status on the simulated gate ------------------------------------------------


def test_gate_close_on_the_simulated_gate_reads_its_state_file(home, capsys):
    from kiosk.cli import main

    state = home.state / "gate-sim"
    state.parent.mkdir(parents=True)
    state.write_text("on\n")  # a kiosk killed during a pulse
    assert main(["gate", "status"]) == 0
    assert "state file: ENERGISED" in capsys.readouterr().out
    assert main(["gate", "close"]) == 0
    assert "gate closed: simulated gate (state file: released)" in capsys.readouterr().out
    assert state.read_text().strip() == "off"


def test_gate_close_without_any_usable_gate_section_says_so(home, capsys):
    from kiosk.cli import main

    home.root.mkdir(parents=True)
    home.config.write_text("[gate]\ndriver = 'telnet'\n")
    assert main(["gate", "close"]) == 2
    err = capsys.readouterr().err
    assert "gate.driver = 'telnet'" in err and "no saved copy" in err


def test_gate_close_reports_a_relay_that_reads_back_energised(home, capsys, fake_gpio):
    from kiosk.cli import main
    from kiosk.config import Config, replace, save_config

    save_config(replace(Config(), "gate", driver="gpio", gpio_pin=12), home.config)
    assert main(["gate", "close"]) == 0
    assert "GPIO pin 12" in capsys.readouterr().out
    fake_gpio.stuck_high = True
    fake_gpio.levels[12] = 1
    assert main(["gate", "close"]) == 5  # exitcodes.GATE
    assert "still reads energised" in capsys.readouterr().err
