"""The gate fails closed: the real serial relay driver on a pseudo-terminal, driven through the guardian process,
released when the kiosk is SIGKILLed, hangs, or never gets past a broken config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("serial")  # pyserial: the dev extra

from kiosk.config import Config, GateConfig, replace, save_config  # noqa: E402
from kiosk.gate.drivers import open_gate_driver  # noqa: E402
from kiosk.gate.recorder import RelayRecorder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def relay():
    with RelayRecorder() as recorder:
        yield recorder


def gate_config(relay, **values):
    return GateConfig(**dict(relay.gate_settings(), **values))


def test_a_relay_whose_open_bytes_are_broken_is_still_driven_closed(relay):
    from kiosk.gate.drivers import GateUnavailable

    with pytest.raises(GateUnavailable, match="serial_open_hex"):
        open_gate_driver(gate_config(relay, guardian=False, serial_open_hex="ZZ"))
    assert relay.wait_for("off", timeout=1) is not None and relay.is_on() is False


def test_recorder_sees_the_serial_drivers_real_bytes(relay):
    gate = open_gate_driver(gate_config(relay, guardian=False))
    assert relay.wait_for("off", timeout=1) is not None  # opening drives it closed
    assert gate.pulse(100)
    on = relay.wait_for("on", timeout=1)
    off = relay.wait_for("off", after=on, timeout=1)
    assert on is not None and off is not None and relay.is_on() is False and off.data == bytes.fromhex("A00100A1")
    gate.close()


def test_guardian_pulses_and_releases_on_its_own_clock(relay):
    gate = open_gate_driver(gate_config(relay, max_pulse_ms=100))
    try:
        assert type(gate).__name__ == "GuardedGate" and gate.state == "closed"
        started = time.time()
        assert gate.pulse(5000)  # asked for 5 s; the guardian holds it at most max_pulse_ms
        on = relay.wait_for("on", timeout=1)
        off = relay.wait_for("off", after=on, timeout=2)
        assert on is not None and off is not None and 0.09 <= off.t - started < 2.0
    finally:
        assert gate.close() is True
    assert relay.is_on() is False


def test_guardian_is_kept_alive_by_heartbeats_and_replaced_when_it_dies(relay):
    gate = open_gate_driver(gate_config(relay, guardian_timeout_s=0.6))
    try:
        first = gate.pid
        time.sleep(0.9)  # longer than the timeout: only the heartbeat keeps it
        assert gate.pid == first and gate.state == "closed"
        assert gate.pulse(5000)
        on = relay.wait_for("on", timeout=1)
        os.kill(first, signal.SIGKILL)  # the relay keeps its last command: ON
        assert relay.wait_for("off", after=on, timeout=2) is not None  # a new guardian closes it first
        assert gate.pid not in (None, first)
    finally:
        gate.close()


CHILD = textwrap.dedent("""
    import json, sys, time
    from kiosk.config import GateConfig
    from kiosk.gate.drivers import open_gate_driver
    gate = open_gate_driver(GateConfig(**json.loads(sys.argv[1])))
    print("pulsed" if gate.pulse(8000) else "failed", flush=True)
    time.sleep(60)
""")


def test_sigkill_during_a_pulse_releases_the_relay(relay):
    config = json.dumps(asdict(gate_config(relay)))
    child = subprocess.Popen([sys.executable, "-c", CHILD, config], stdout=subprocess.PIPE, cwd=str(REPO))
    try:
        assert child.stdout.readline().strip() == b"pulsed"
        on = relay.wait_for("on", timeout=1)
        assert on is not None
        child.kill()  # SIGKILL: no finally, no atexit, no timer of the kiosk's runs again
        child.wait()
        off = relay.wait_for("off", after=on, timeout=1.5)  # the 8 s pulse is far from over: the guardian's doing
        assert off is not None and relay.is_on() is False
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()


def test_guardian_of_a_hung_kiosk_releases_the_relay_and_exits(relay):
    """A kiosk that hangs with the pipe still open: no heartbeat, so the guardian closes on its own."""
    config = json.dumps(asdict(gate_config(relay, guardian_timeout_s=0.5)))
    guardian = subprocess.Popen([sys.executable, "-m", "kiosk.gate.guardian", config], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, cwd=str(REPO))
    try:
        assert json.loads(guardian.stdout.readline())["ready"] is True
        sent = time.time()
        guardian.stdin.write(b"pulse 8000\n")
        guardian.stdin.flush()
        answer = json.loads(guardian.stdout.readline())
        assert answer["ok"] is True and answer["state"] == "open" and answer["read_back"] is None
        on = relay.wait_for("on", timeout=1)
        off = relay.wait_for("off", after=on, timeout=2.0)  # the parent "hangs": the pipe stays open, silent
        assert off is not None and 0.45 <= off.t - sent < 2.0  # its timeout after the last word, not the 8 s pulse
        assert guardian.wait(timeout=2) == 0
    finally:
        if guardian.poll() is None:
            guardian.kill()
        guardian.stdin.close()
        guardian.stdout.close()


def test_guardian_says_why_a_device_cannot_be_opened():
    from kiosk.gate.drivers import GateUnavailable

    with pytest.raises(GateUnavailable, match="cannot open gate relay port /dev/ttyNOPE9"):
        open_gate_driver(GateConfig(driver="serial", serial_port="/dev/ttyNOPE9"))


# ---- the kiosk releases the relay before anything else can fail, and the supervisor's gate close ------------


def test_a_restart_that_fails_on_a_broken_config_still_releases_the_relay(home, capsys, relay):
    from kiosk.cli import main

    home.root.mkdir(parents=True)
    gate = "".join('{} = "{}"\n'.format(k, v) for k, v in relay.gate_settings().items())
    home.config.write_text('[policy]\nvote_window = "many"\n[gate]\n' + gate, encoding="utf-8")
    started = time.time()
    assert main(["run", "--headless", "--duration", "0.1"]) == 2  # the kiosk does not start on a bad config
    assert "policy.vote_window" in capsys.readouterr().err
    assert relay.wait_for("off", since=started, timeout=0.5) is not None and relay.is_on() is False


def test_gate_close_on_a_corrupt_config_uses_the_saved_gate_section(home, capsys, relay):
    from kiosk.cli import main

    save_config(replace(Config(), "gate", **relay.gate_settings()), home.config)
    assert main(["gate", "close"]) == 0
    out = capsys.readouterr().out
    assert "gate closed: serial relay on {} (no read-back".format(relay.port) in out
    home.config.write_bytes(b"\x00\x9f corrupt config \xff")
    started = time.time()
    assert main(["gate", "close"]) == 0
    captured = capsys.readouterr()
    assert "using the gate settings last used" in captured.err and "gate closed" in captured.out
    assert relay.wait_for("off", since=started, timeout=0.5) is not None


def test_open_gate_first_names_an_unusable_relay(home):
    from kiosk.gate.startup import open_gate_first

    home.root.mkdir(parents=True)
    save_config(replace(Config(), "gate", driver="serial", serial_port="/dev/ttyNOPE9", guardian=False), home.config)
    opened = open_gate_first(home)
    assert opened.driver.name == "serial UNAVAILABLE" and opened.driver.pulse(100) is False
    assert "cannot open gate relay port /dev/ttyNOPE9" in opened.problems[0]


def test_run_with_an_unusable_relay_keeps_the_gate_closed_and_says_so(home, capsys, tmp_path, monkeypatch):
    import cv2
    import numpy as np

    from kiosk.cli import main
    from kiosk.runtime import headless
    from kiosk.store.passes import create_keys

    image = tmp_path / "lobby.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 90, np.uint8))
    config = replace(Config(), "gate", driver="gpio", gpio_pin=12)  # no Jetson.GPIO on this machine
    config = replace(config, "speech", tts="none")
    config = replace(config, "listen", enabled=False)
    config = replace(config, "vision", face_model=str(tmp_path / "missing.onnx"))  # fast: no models
    config = replace(config, "camera", source=str(image), loop=False)
    save_config(config, home.config)
    create_keys(home.private_key, home.public_key)
    monkeypatch.setattr(headless.signal, "signal", lambda *args: None)  # leave pytest's Ctrl-C alone
    assert main(["run", "--headless", "--duration", "0.2"]) == 0  # as before: it runs, the gate stays closed
    out, err = capsys.readouterr()
    assert "gate gpio UNAVAILABLE" in out and "gate sim" not in out
    assert "problem: gate: gate driver gpio needs Jetson.GPIO" in err


def test_a_simulated_gate_is_announced(home):
    from kiosk.gate.startup import open_gate_first

    opened = open_gate_first(home)
    assert opened.driver.name == "sim" and "SIMULATED" in opened.notes[0] and not opened.problems
