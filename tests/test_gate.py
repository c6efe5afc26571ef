"""Gate drivers: pulses are timed, closed is the state after every error."""

from __future__ import annotations

import dataclasses
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
    """Jetson.GPIO as the kiosk uses it (BOARD numbering, the 40-pin header's GPIO pins), recording every level
    change with its time (``timeline``: (t, pin, level)). ``stuck`` pins keep their level whatever is written (a
    pin that is not muxed as GPIO, seen through a read-back that reads the pad); ``stuck_high`` sticks them all."""

    BOARD, OUT, HIGH, LOW = "BOARD", "OUT", 1, 0
    PINS = (7, 11, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 26, 29, 31, 32, 33, 35, 36, 37, 38, 40)

    def __init__(self, stuck_high=False, clock=time.perf_counter):
        self.levels = {}
        self.calls = []
        self.timeline = []
        self.stuck_high = stuck_high
        self.stuck = {}
        self.clock = clock

    def setwarnings(self, flag):
        self.calls.append(("setwarnings", flag))

    def setmode(self, mode):
        self.calls.append(("setmode", mode))

    def setup(self, channels, direction, initial=None):
        pins = channels if isinstance(channels, (list, tuple)) else [channels]
        for pin in pins:
            if pin not in self.PINS:
                raise ValueError("Channel {} is invalid".format(pin))
        for pin in pins:
            self.calls.append(("setup", pin, initial))
            self._set(pin, initial)

    def output(self, pin, level):
        if pin not in self.levels:
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        self._set(pin, level)

    def _set(self, pin, level):
        if pin in self.stuck:
            level = self.stuck[pin]
        elif self.stuck_high:
            level = self.HIGH
        self.levels[pin] = level
        self.timeline.append((self.clock(), pin, level))

    def input(self, pin):  # Jetson.GPIO reads back the level an output pin drives
        return self.levels[pin]

    def cleanup(self, channels=None):
        self.calls.append(("cleanup", channels))


@pytest.fixture
def fake_gpio(monkeypatch):
    return install_fake_gpio(monkeypatch, FakeGPIO())


def install_fake_gpio(monkeypatch, gpio, names=None):
    """Put ``gpio`` in place of Jetson.GPIO; ``names`` gives its pin table's GPIO names (BOARD pin -> "PAC.06")."""
    import types

    package = types.ModuleType("Jetson")
    package.GPIO = gpio
    pin_data = types.ModuleType("Jetson.GPIO.gpio_pin_data")
    channels = {pin: types.SimpleNamespace(gpio_name=name) for pin, name in (names or {}).items()}
    pin_data.get_data = lambda: ("JETSON_ORIN_NANO", {}, {"BOARD": channels})
    gpio.gpio_pin_data = pin_data
    monkeypatch.setitem(sys.modules, "Jetson", package)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", gpio)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO.gpio_pin_data", pin_data)
    return gpio


def test_gpio_pulse_reads_back_and_cleans_up(fake_gpio):
    gate = open_gate_driver(GateConfig(driver="gpio", gpio_pin=12, guardian=False))
    assert fake_gpio.levels[12] == 0 and gate.read_back() is False
    assert gate.pulse(5000) and fake_gpio.levels[12] == 1 and gate.read_back() is True
    assert gate.close() is True and fake_gpio.levels[12] == 0 and ("cleanup", 12) in fake_gpio.calls


def test_gpio_bad_pins_are_refused(fake_gpio):
    with pytest.raises(GateUnavailable, match="gate.gpio_pin = 3"):
        open_gate_driver(GateConfig(driver="gpio", gpio_pin=3, guardian=False))


# ---- polarity: an active-low relay board idles HIGH on every path ---------------------------------------


def levels_of(gpio, pin):
    return [level for _, p, level in gpio.timeline if p == pin]


def test_active_low_board_idles_high_and_a_pulse_drives_low_then_high(fake_gpio):
    gate = open_gate_driver(GateConfig(driver="gpio", gpio_pin=7, active_low=True, guardian=False))
    assert ("setup", 7, 1) in fake_gpio.calls  # set up at its inactive level: never a glitch LOW at start
    assert fake_gpio.levels[7] == 1 and gate.read_back() is False and gate.state == "closed"
    assert gate.pulse(60)
    assert fake_gpio.levels[7] == 0 and gate.read_back() is True
    time.sleep(0.25)  # the driver's own timer releases it
    assert fake_gpio.levels[7] == 1 and gate.state == "closed"
    assert levels_of(fake_gpio, 7) == [1, 1, 0, 1]  # setup, first close, pulse, release
    assert gate.pulse(5000) and fake_gpio.levels[7] == 0
    assert gate.close() is True and fake_gpio.levels[7] == 1  # close cancels the pulse: HIGH


def test_active_low_board_is_released_high_by_the_guardians_handling(fake_gpio):
    """The guardian process runs this same code (handle); its release at max_pulse_ms and at exit end HIGH."""
    from kiosk.gate.guardian import handle

    config = GateConfig(driver="gpio", gpio_pin=7, active_low=True, max_pulse_ms=60)
    driver = open_gate_driver(config, guardian=False)  # as the guardian opens it
    answer = handle(driver, config, "pulse 5000")
    assert answer["ok"] and answer["read_back"] is True and fake_gpio.levels[7] == 0
    time.sleep(0.25)  # max_pulse_ms, not the 5 s asked for
    assert fake_gpio.levels[7] == 1 and handle(driver, config, "status")["read_back"] is False
    handle(driver, config, "pulse 5000")
    assert handle(driver, config, "close")["state"] == "closed" and fake_gpio.levels[7] == 1
    handle(driver, config, "pulse 5000")
    assert driver.close() is True and fake_gpio.levels[7] == 1  # the guardian's exit path


def test_gate_close_from_the_gate_section_alone_drives_an_active_low_pin_high(home, capsys, fake_gpio):
    from kiosk.cli import main

    home.root.mkdir(parents=True)
    home.config.write_text('[camera]\nwidth = "broken"\n[gate]\ndriver = "gpio"\ngpio_pin = 7\nactive_low = true\n')
    assert main(["gate", "close"]) == 0
    out = capsys.readouterr().out
    assert fake_gpio.levels[7] == 1 and "active low: idles HIGH" in out and "pin read back: released" in out


def test_the_old_active_high_key_still_works_and_contradictions_are_refused():
    from kiosk.config import ConfigError, config_from_dict

    assert config_from_dict({"gate": {"active_high": False}}).gate.active_low is True
    assert config_from_dict({"gate": {"active_high": True}}).gate.active_low is False
    assert config_from_dict({"gate": {"active_high": False, "active_low": True}}).gate.active_high is False
    with pytest.raises(ConfigError, match="gate.active_low = true and gate.active_high = true contradict"):
        config_from_dict({"gate": {"active_high": True, "active_low": True}})
    with pytest.raises(ConfigError, match="gate.active_high = 'no'"):
        config_from_dict({"gate": {"active_high": "no"}})


def test_a_saved_gate_section_with_the_old_key_is_still_usable(home):
    import json

    from kiosk.gate.settings import load_last_good, saved_gate_path

    path = saved_gate_path(home)
    path.parent.mkdir(parents=True)
    old = dict(dataclasses.asdict(GateConfig(driver="gpio")))
    del old["active_low"]
    old["active_high"] = False  # a state/gate.json written before active_low existed
    path.write_text(json.dumps({"gate": old, "saved": "then"}))
    assert load_last_good(home)[0].active_low is True


def test_a_pin_that_does_not_read_back_what_it_was_driven_to_is_a_fault(fake_gpio):
    gate = open_gate_driver(GateConfig(driver="gpio", gpio_pin=12, guardian=False))
    gate.fault_retry_s, gate.close_backoff_s = 30, 0.01
    fake_gpio.stuck[12] = 1  # it stays HIGH (energised, active high) whatever is written
    assert gate.drive_closed() is False
    assert gate.state == "fault" and "pin 12 reads HIGH after being driven LOW" in gate.fault
    assert gate.pulse(100) is False  # no pulse while the close does not read back
    del fake_gpio.stuck[12]
    assert gate.close() is True and fake_gpio.levels[12] == 0


# ---- the pin mux, as the kernel's debugfs shows it (a fake tree) -------------------------------------------


PINCONF = """Pin config settings per pin group
Format: group (name): configs
0 (soc_gpio08_pb0): \n\tpull=0\n\ttristate=1\n\tenable-input=1\n\tfunction=rsvd1
139 (soc_gpio59_pac6): \n\tpull=0\n\ttristate={tristate}\n\tenable-input=1\n\tio-hv=0\n\tfunction=rsvd1
140 (uart1_tx_pr2): \n\tpull=0\n\ttristate=0\n\tenable-input=0\n\tfunction=uarta
"""
PINMUX = """Pinmux settings per pin
Format: pin (name): mux_owner gpio_owner hog?
pin 139 (SOC_GPIO59_PAC6): (MUX UNCLAIMED) (GPIO UNCLAIMED)
pin 140 (UART1_TX_PR2): 3100000.serial (GPIO UNCLAIMED) function uarta group uart1_tx_pr2
"""


def debugfs(root, tristate=0, release="# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64"):
    pinctrl = root / "sys" / "kernel" / "debug" / "pinctrl" / "2430000.pinmux"
    pinctrl.mkdir(parents=True)
    (pinctrl / "pinconf-groups").write_text(PINCONF.format(tristate=tristate).replace("\\n", "\n").replace("\\t", "\t"))
    (pinctrl / "pinmux-pins").write_text(PINMUX)
    (root / "etc").mkdir()
    (root / "etc" / "nv_tegra_release").write_text(release + "\n")
    return root


def test_pin_mux_ok_not_muxed_claimed_and_cannot_tell(tmp_path):
    from kiosk.gate.pinmux import check_pin_mux

    ok = check_pin_mux(7, "PAC.06", debugfs(tmp_path / "a", tristate=0))
    assert ok.status == "ok" and "soc_gpio59_pac6" in ok.detail and "tristate=0" in ok.detail
    off = check_pin_mux(7, "PAC.06", debugfs(tmp_path / "b", tristate=1))
    assert off.status == "not muxed" and "tristate=1" in off.detail and "jetson-io.py" in off.detail
    claimed = check_pin_mux(8, "PR.02", tmp_path / "a")
    assert claimed.status == "not muxed" and "3100000.serial" in claimed.detail and "uarta" in claimed.detail
    assert check_pin_mux(7, "PAC.06", tmp_path / "nothing").status == "unknown"  # no debugfs
    assert check_pin_mux(12, "PH.07", tmp_path / "a").status == "unknown"  # not in the files
    assert check_pin_mux(7, None, tmp_path / "a").status in ("unknown",)  # no Jetson.GPIO names here


def test_pin_mux_without_root_says_it_cannot_tell(tmp_path, monkeypatch):
    import pathlib

    from kiosk.gate.pinmux import check_pin_mux

    root = debugfs(tmp_path / "c")

    def denied(self):  # debugfs is 0700 root: what a non-root user meets (the tests may run as root)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "iterdir", denied)
    result = check_pin_mux(7, "PAC.06", root)
    assert result.status == "unknown" and "readable only by root" in result.detail and "sudo" in result.detail


def test_jetpack_release_notes(tmp_path):
    from kiosk.gate.pinmux import jetpack_note, l4t_release

    jp5 = debugfs(tmp_path / "jp5", release="# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref")
    assert l4t_release(jp5) == (35, "4.1")
    ok, text = jetpack_note(jp5)
    assert ok and "JetPack 5" in text and "KEEPS its level" in text and "ExecStopPost" in text and "guardian" in text
    assert "JetPack 6" in jetpack_note(debugfs(tmp_path / "jp6"))[1]
    assert jetpack_note(tmp_path / "pc") is None


def test_doctor_and_gate_status_report_the_pin_mux(monkeypatch, tmp_path, capsys, home):
    from kiosk.cli import main
    from kiosk.config import Config, replace, save_config
    from kiosk.gate import checks, pinmux
    from kiosk.runtime.doctor import _gate

    install_fake_gpio(monkeypatch, FakeGPIO(), names={7: "PAC.06"})
    root = debugfs(tmp_path / "jetson", tristate=1,
                   release="# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref")
    original = checks.hardware_checks
    monkeypatch.setattr(checks, "hardware_checks", lambda config: original(config, root))
    config = replace(Config(), "gate", driver="gpio", gpio_pin=7, active_low=True, guardian=False)
    found = original(config.gate, root)
    assert ("gate pin mux", False) == found[0][:2] and "relay: pin 7 (PAC.06" in found[0][2]
    assert found[1][0] == "gate pin at a crash" and "KEEPS its level" in found[1][2]
    save_config(config, home.config)
    assert main(["gate", "status"]) == 1
    captured = capsys.readouterr()
    assert "tristate=1" in captured.out and "problem: gate pin mux" in captured.err
    lines = _gate(config)
    assert lines[0][:2] == ("gate", True) and "reads back released" in lines[0][2]
    assert any(part == "gate pin mux" and not ok for part, ok, _ in lines)
    assert pinmux.check_pin_mux(7, root=root).status == "not muxed"  # the names come from Jetson.GPIO's table


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
    assert "did not close: the gpio relay did not close: pin 12 reads HIGH after being driven LOW" in \
        capsys.readouterr().err
