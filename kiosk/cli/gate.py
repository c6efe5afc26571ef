"""``dabai-kiosk gate close | status | test``: the relay on its own, from the gate section alone.

``gate close`` is what the supervisor runs after the kiosk stopped or died (systemd's ExecStopPost): it needs
no database, key or model, and reads config.toml's ``[gate]`` even when the rest of the file is broken, else
the copy of the last good gate section in state/gate.json (:mod:`kiosk.gate.settings`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional, Tuple

from kiosk.cli.common import Add, UserError, home_of
from kiosk.config import GateConfig, Home
from kiosk.runtime import exitcodes


def _settings(args: argparse.Namespace) -> Tuple[Home, GateConfig]:
    """The home and its usable gate section (ConfigError, reported by main, when there is none)."""
    from kiosk.gate.settings import usable_gate_config

    home = home_of(args)
    config, notes = usable_gate_config(home)
    for note in notes:
        print("note: {}".format(note), file=sys.stderr)
    return home, config


def describe(config: GateConfig) -> str:
    if config.driver == "serial":
        return "serial relay on {}".format(config.serial_port)
    if config.driver == "gpio":
        return "relay on GPIO pin {} ({})".format(config.gpio_pin, "active high" if config.active_high else "active low")
    return "simulated gate"


def _read_back_text(config: GateConfig, level: Optional[bool]) -> str:
    if level is None:
        return "no read-back: the relay board does not report its state"
    where = "state file" if config.driver == "sim" else "pin read back"
    return "{}: {}".format(where, "ENERGISED" if level else "released")


def cmd_gate_close(args: argparse.Namespace) -> int:
    from kiosk.gate.drivers import open_gate_driver
    from kiosk.gate.settings import save_last_good

    home, config = _settings(args)
    driver = open_gate_driver(config, state_dir=home.state, guardian=False)  # GateUnavailable: main says why
    try:
        closed = driver.drive_closed()
        level = driver.read_back() if closed else None
    finally:
        closed = driver.close() and closed
    if not closed:
        print("dabai-kiosk: the {} did not close: {}".format(describe(config), driver.fault), file=sys.stderr)
        return exitcodes.GATE
    if level:
        print("dabai-kiosk: the {} was commanded closed but still reads energised".format(describe(config)),
              file=sys.stderr)
        return exitcodes.GATE
    save_last_good(home, config)
    print("gate closed: {} ({})".format(describe(config), _read_back_text(config, level)))
    return exitcodes.OK


def cmd_gate_status(args: argparse.Namespace) -> int:
    from kiosk.gate.drivers import read_sim_state
    from kiosk.gate.settings import gate_notes, gate_problems

    home, config = _settings(args)
    problems: List[str] = gate_problems(config)
    print("gate: {} (guardian {})".format(describe(config), "on" if config.guardian else "off"))
    if config.driver == "sim":
        level = read_sim_state(home.state / "gate-sim")
        print("relay: {}".format("unknown (no state file yet)" if level is None else _read_back_text(config, level)))
    else:
        print("relay: not read without driving it (`dabai-kiosk gate close` drives it closed and reads it back "
              "where the hardware can)")
    for note in gate_notes(config):
        print("note: {}".format(note))
    for problem in problems:
        print("problem: {}".format(problem), file=sys.stderr)
    return exitcodes.FAILED if problems else exitcodes.OK


def cmd_gate_test(args: argparse.Namespace) -> int:
    from kiosk.gate.drivers import open_gate_driver

    home, config = _settings(args)
    if not 50 <= args.ms <= config.max_pulse_ms:
        raise UserError("--ms {}: must be between 50 and gate.max_pulse_ms ({})".format(args.ms, config.max_pulse_ms))
    driver = open_gate_driver(config, state_dir=home.state)  # the kiosk's own path, guardian included
    try:
        opened = driver.pulse(args.ms)
        if opened:
            time.sleep(args.ms / 1000.0 + 0.1)
        closed = driver.drive_closed()
    finally:
        closed = driver.close() and closed
    if not opened or not closed:
        print("dabai-kiosk: the {} {}".format(describe(config), "did not open" if not opened else
                                               "did not close: {}".format(driver.fault)), file=sys.stderr)
        return exitcodes.GATE if not closed else exitcodes.FAILED
    print("gate pulsed {} ms and closed: {}".format(args.ms, describe(config)))
    return exitcodes.OK


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("gate", _dispatch, "drive the gate relay closed, show its settings, or pulse it once (needs only [gate])")
    p.add_argument("action", choices=("close", "status", "test"),
                   help="close: command the relay closed and read it back (exit 0 only when closed); status: the "
                        "gate settings in use and whether they can work here; test: one pulse of --ms")
    p.add_argument("--ms", type=int, default=800, help="test: pulse length in milliseconds (default 800)")


def _dispatch(args: argparse.Namespace) -> int:
    return {"close": cmd_gate_close, "status": cmd_gate_status, "test": cmd_gate_test}[args.action](args)
