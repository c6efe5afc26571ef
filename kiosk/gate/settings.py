"""The gate section on its own: read even when the rest of the config is broken, a copy of the last good one,
and the checks of each setting against the driver it names.

The relay must be found (to drive it closed) when config.toml is damaged, half-edited or gone: the kiosk
after a crash, ``dabai-kiosk gate close`` from the supervisor. So ``[gate]`` is read alone (even out of a
file that is not valid TOML as a whole), and every gate section that opened its relay is copied to
``state/gate.json`` (the data home's folder of what must outlive everything else), used when config.toml
gives no usable ``[gate]``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from kiosk.config import MAX_FILE_BYTES, ConfigError, GateConfig, Home, atomic_write, config_from_dict, parse_toml

# The pins of the Jetson 40-pin header that Jetson.GPIO drives (BOARD numbering); the others are power,
# ground, I2C or UART.
JETSON_GPIO_PINS = (7, 11, 12, 13, 15, 16, 18, 19, 21, 22, 23, 24, 26, 29, 31, 32, 33, 35, 36, 37, 38, 40)


def saved_gate_path(home: Home) -> Path:
    return home.state / "gate.json"


def _gate_table(text: str) -> Optional[str]:
    """The ``[gate]`` table's lines of a TOML text that may be broken elsewhere; None when it has none."""
    lines: Optional[List[str]] = None
    for line in text.splitlines():
        header = line.split("#", 1)[0].strip()
        if header.startswith("["):
            if lines is not None:
                break
            if header == "[gate]":
                lines = [header]
        elif lines is not None:
            lines.append(line)
    return None if lines is None else "\n".join(lines) + "\n"


def load_gate_config(path: Path) -> GateConfig:
    """Only the ``[gate]`` table of ``path``, validated like the whole file; the other sections may be broken,
    and so may the TOML outside ``[gate]``. A missing file means the defaults. Raises ConfigError when
    ``[gate]`` itself cannot be read or has a bad value."""
    if not path.exists():
        return GateConfig()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), ["cannot read: {}".format(exc)]) from None
    try:
        data: Dict[str, Any] = parse_toml(raw, str(path))  # size, encoding, depth: refused in one sentence
    except ConfigError as exc:
        table = _gate_table(raw[:MAX_FILE_BYTES].decode("utf-8", "replace").lstrip("\ufeff"))
        if table is None:
            raise ConfigError(str(path), ["{} and no [gate] table found".format("; ".join(exc.problems))]) from None
        try:
            data = parse_toml(table.encode("utf-8"), "[gate] of {}".format(path))
        except ConfigError as gate_exc:
            raise ConfigError(str(path), ["[gate]: {}".format("; ".join(gate_exc.problems))]) from None
    return config_from_dict({"gate": data.get("gate", {})}, str(path)).gate


def save_last_good(home: Home, config: GateConfig) -> None:
    """Keep ``config`` as the last gate section whose relay opened (only written when it changed)."""
    path = saved_gate_path(home)
    values = dataclasses.asdict(config)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("gate") == values:
            return
    except (OSError, ValueError, AttributeError):
        pass
    record = {"gate": values, "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write(path, (json.dumps(record, indent=1) + "\n").encode("utf-8"), mode=0o640)


def load_last_good(home: Home) -> Optional[Tuple[GateConfig, str]]:
    """The saved gate section and when it was saved; None when there is none or it is unreadable."""
    try:
        record = json.loads(saved_gate_path(home).read_text(encoding="utf-8"))
        return config_from_dict({"gate": record["gate"]}, "<saved>").gate, str(record.get("saved", "?"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def usable_gate_config(home: Home) -> Tuple[GateConfig, List[str]]:
    """The gate section to drive and notes on where it came from: config.toml's ``[gate]`` when it is
    readable and valid, else the last good copy. Raises ConfigError when neither exists."""
    saved = load_last_good(home)
    if not home.config.exists():
        if saved is None:
            return GateConfig(), []
        return saved[0], ["{} is missing: using the gate settings last used on {} ({})".format(
            home.config, saved[1], saved_gate_path(home))]
    try:
        return load_gate_config(home.config), []
    except ConfigError as exc:
        if saved is None:
            raise ConfigError(exc.path, exc.problems + ["no saved copy of a good [gate] either ({})".format(
                saved_gate_path(home))]) from None
        return saved[0], ["{}'s [gate] is unusable ({}): using the gate settings last used on {} ({})".format(
            home.config, "; ".join(exc.problems), saved[1], saved_gate_path(home))]


# ---- checks of each setting against the driver it names -------------------------------------------


def _hex_problem(config: GateConfig, key: str) -> Optional[str]:
    text = getattr(config, key)
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return "gate.{} = {!r}: must be hex bytes such as A00101A2".format(key, text)
    return None if data else "gate.{} is empty: the relay board needs its command bytes".format(key)


def gate_problems(config: GateConfig) -> List[str]:
    """Why the gate section cannot drive its relay on this machine (each with its key); empty when it can."""
    problems: List[str] = []
    if config.pulse_ms > config.max_pulse_ms:
        problems.append("gate.pulse_ms = {}: longer than gate.max_pulse_ms ({}), every pulse would be cut short".format(
            config.pulse_ms, config.max_pulse_ms))
    if config.driver in ("serial", "modbus"):
        try:
            import serial  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            problems.append("gate.driver = {}: pyserial is not installed (pip install 'dabai-kiosk[serial]')".format(
                config.driver))
        if not os.path.exists(config.serial_port):
            problems.append("gate.serial_port = {!r}: no such device (is the {} plugged in?)".format(
                config.serial_port, "USB relay" if config.driver == "serial" else "RS485 adapter"))
    if config.driver == "modbus" and config.modbus_baud not in MODBUS_BAUDS:
        problems.append("gate.modbus_baud = {}: not a baud rate relay boards use ({})".format(
            config.modbus_baud, ", ".join(str(b) for b in MODBUS_BAUDS)))
    if config.driver == "serial":
        hex_problems = [p for p in (_hex_problem(config, "serial_open_hex"), _hex_problem(config, "serial_close_hex")) if p]
        problems.extend(hex_problems)
        if not hex_problems and bytes.fromhex(config.serial_open_hex) == bytes.fromhex(config.serial_close_hex):
            problems.append("gate.serial_close_hex = {!r}: the same bytes as gate.serial_open_hex".format(
                config.serial_close_hex))
    elif config.driver == "gpio":
        problems.extend(_pin_problems("gate.gpio_pin", config.gpio_pin))
        problems.extend(_jetson_gpio_problems("gate.driver = gpio"))
    if config.wiegand != "off":
        from kiosk.gate.drivers import wiegand_setup_problem

        for key in ("wiegand_d0_pin", "wiegand_d1_pin"):
            problems.extend(_pin_problems("gate." + key, getattr(config, key)))
        problem = wiegand_setup_problem(config)
        if problem:
            problems.append(problem)
        if config.driver != "gpio":  # the gpio relay has said it already
            problems.extend(_jetson_gpio_problems("gate.wiegand = {}".format(config.wiegand)))
    return problems


MODBUS_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _pin_problems(key: str, pin: int) -> List[str]:
    if pin in JETSON_GPIO_PINS:
        return []
    return ["{} = {}: not a GPIO pin of the Jetson 40-pin header (BOARD numbers: {})".format(
        key, pin, ", ".join(str(p) for p in JETSON_GPIO_PINS))]


def _jetson_gpio_problems(what: str) -> List[str]:
    try:
        import Jetson.GPIO  # type: ignore[import-not-found]  # noqa: F401
    except (ImportError, RuntimeError) as exc:
        return ["{}: Jetson.GPIO cannot be used here ({}); on a Jetson pip install Jetson.GPIO, elsewhere set "
                "gate.driver = \"sim\" and gate.wiegand = \"off\"".format(what, exc)]
    return []


SIMULATED = "the gate is SIMULATED (gate.driver = sim): no relay is driven, the real gate never opens"


def gate_notes(config: GateConfig) -> List[str]:
    """What is worth saying about a gate section that works."""
    return [SIMULATED] if config.driver == "sim" else []
