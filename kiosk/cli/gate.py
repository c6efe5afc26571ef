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
        text = "serial relay on {}".format(config.serial_port)
    elif config.driver == "modbus":
        from kiosk.gate.modbus import describe_link

        text = "Modbus RTU relay, {}".format(describe_link(config))
    elif config.driver == "gpio":
        text = "relay on GPIO pin {} ({})".format(
            config.gpio_pin, "active low: idles HIGH" if config.active_low else "active high: idles LOW")
    else:
        text = "simulated gate"
    if config.wiegand != "off":
        text += " + Wiegand {} on pins {}/{}".format(config.wiegand, config.wiegand_d0_pin, config.wiegand_d1_pin)
    return text


def _read_back_text(config: GateConfig, level: Optional[bool]) -> str:
    if level is None:
        return "no read-back: the relay board does not report its state"
    where = {"sim": "state file", "modbus": "coil read back"}.get(config.driver, "pin read back")
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


def _print_hardware(config: GateConfig) -> List[str]:
    """The pin mux and JetPack lines (nothing is driven); the problems among them."""
    from kiosk.gate.checks import hardware_checks

    problems = []
    for part, ok, detail in hardware_checks(config):
        print("{}: {}".format(part, detail))
        if not ok:
            problems.append("{}: {}".format(part, detail))
    return problems


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
    problems += _print_hardware(config)
    for note in gate_notes(config):
        print("note: {}".format(note))
    for problem in problems:
        print("problem: {}".format(problem), file=sys.stderr)
    return exitcodes.FAILED if problems else exitcodes.OK


def cmd_gate_test(args: argparse.Namespace) -> int:
    from kiosk.gate.drivers import open_gate_driver

    home, config = _settings(args)
    if args.wiegand is not None:
        return _test_wiegand(home, config, args.wiegand)
    if not 50 <= args.ms <= config.max_pulse_ms:
        raise UserError("--ms {}: must be between 50 and gate.max_pulse_ms ({})".format(args.ms, config.max_pulse_ms))
    mux_problems = _print_hardware(config)
    driver = open_gate_driver(config, state_dir=home.state)  # the kiosk's own path, guardian included
    during: Optional[bool] = None
    after: Optional[bool] = None
    try:
        opened = driver.pulse(args.ms)
        if opened:
            time.sleep(min(0.05, args.ms / 2000.0))
            during = driver.read_back()
            time.sleep(args.ms / 1000.0 + 0.1)
        closed = driver.drive_closed()
        after = driver.read_back() if closed else None
    finally:
        closed = driver.close() and closed
    if not opened or not closed:
        print("dabai-kiosk: the {} {}".format(describe(config), "did not open" if not opened else
                                               "did not close: {}".format(driver.fault)), file=sys.stderr)
        return exitcodes.GATE if not closed else exitcodes.FAILED
    if after:
        print("dabai-kiosk: the {} was commanded closed but still reads energised".format(describe(config)),
              file=sys.stderr)
        return exitcodes.GATE
    print("gate pulsed {} ms and closed: {}".format(args.ms, describe(config)))
    if during is not None:
        print("read-back: {} during the pulse, {} after".format("energised" if during else "NOT ENERGISED",
                                                                "released" if after is False else "unknown"))
    if during is False:
        print("dabai-kiosk: the relay did not read energised during the pulse", file=sys.stderr)
        return exitcodes.FAILED
    for problem in mux_problems:
        print("problem: {}".format(problem), file=sys.stderr)
    return exitcodes.FAILED if mux_problems else exitcodes.OK


def _test_wiegand(home: Home, config: GateConfig, card: int) -> int:
    """Send one Wiegand frame with ``card`` (the relay is only driven closed, as at every start)."""
    from kiosk.gate.drivers import open_gate_driver
    from kiosk.gate.wiegand import WiegandError, as_text, encode

    if config.wiegand == "off":
        raise UserError("--wiegand: gate.wiegand is off; set it to \"26\" or \"34\" first")
    try:
        bits = encode(config.wiegand, config.wiegand_facility, card)
    except WiegandError as exc:
        raise UserError("--wiegand {}: {}".format(card, exc)) from None
    driver = open_gate_driver(config, state_dir=home.state)
    try:
        sent = driver.send_card(card)
    finally:
        closed = driver.close()
    if not sent:
        print("dabai-kiosk: Wiegand frame not sent: {}".format(driver.wiegand_fault or "no Wiegand output"),
              file=sys.stderr)
        return exitcodes.FAILED
    print("Wiegand {} sent: facility {}, card {} = {}".format(config.wiegand, config.wiegand_facility, card,
                                                              as_text(bits)))
    return exitcodes.OK if closed else exitcodes.GATE


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("gate", _dispatch, "drive the gate relay closed, show its settings, or pulse it once (needs only [gate])")
    p.add_argument("action", choices=("close", "status", "test"),
                   help="close: command the relay closed and read it back (exit 0 only when closed); status: the "
                        "gate settings in use and whether they can work here; test: one pulse of --ms")
    p.add_argument("--ms", type=int, default=800, help="test: pulse length in milliseconds (default 800)")
    p.add_argument("--wiegand", type=int, metavar="CARD",
                   help="test: send one Wiegand frame with this card number instead of pulsing the relay")


def _dispatch(args: argparse.Namespace) -> int:
    return {"close": cmd_gate_close, "status": cmd_gate_status, "test": cmd_gate_test}[args.action](args)
