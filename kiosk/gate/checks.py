"""The gate hardware as ``doctor`` and ``dabai-kiosk gate status | test`` report it: one (part, ok, detail) per line.

``hardware_checks`` drives nothing (the pin mux of every header pin in use, the JetPack note); ``driven_checks``
opens the relay, which drives it closed, reads it back and closes it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

from kiosk.config import GateConfig

Check = Tuple[str, bool, str]


def header_pins(config: GateConfig) -> List[Tuple[str, int]]:
    """(what, BOARD pin) of every header pin the gate section drives."""
    pins: List[Tuple[str, int]] = []
    if config.driver == "gpio":
        pins.append(("relay", config.gpio_pin))
    if config.wiegand != "off":
        pins += [("Wiegand D0", config.wiegand_d0_pin), ("Wiegand D1", config.wiegand_d1_pin)]
    return pins


def hardware_checks(config: GateConfig, root: Path = Path("/")) -> List[Check]:
    """The pin mux of each header pin in use ("cannot tell" is not a failure) and what the JetPack release means
    for them."""
    from kiosk.gate.pinmux import check_pin_mux, jetpack_note

    pins = header_pins(config)
    checks: List[Check] = []
    for what, pin in pins:
        mux = check_pin_mux(pin, root=root)
        checks.append(("gate pin mux", mux.status != "not muxed", "{}: {}".format(what, mux.detail)))
    note = jetpack_note(root) if pins else None
    if note is not None:
        checks.append(("gate pin at a crash", note[0], note[1]))
    return checks


def read_back_text(level: Optional[bool]) -> str:
    if level is None:
        return "no read-back (the relay board does not report its state)"
    return "reads back {}".format("ENERGISED" if level else "released")


def driven_checks(config: GateConfig) -> List[Check]:
    """Open the relay (it is driven closed), read it back, close it: the gate line; and the Wiegand line."""
    from kiosk.gate.drivers import GateUnavailable, open_gate_driver

    try:
        driver = open_gate_driver(config)
    except GateUnavailable as exc:
        return [("gate", False, str(exc))]
    try:
        level = driver.read_back() if driver.fault is None else None
        wiegand_fault = driver.wiegand_fault
    finally:
        closed = driver.close()
    what = "{} driver, {} ms pulse".format(config.driver, config.pulse_ms)
    checks: List[Check] = []
    if not closed:
        checks.append(("gate", False, "{}: the relay did not close: {}".format(what, driver.fault)))
    elif level:
        checks.append(("gate", False, "{}: commanded closed but {}".format(what, read_back_text(level))))
    else:
        checks.append(("gate", True, "{}; {}".format(what, read_back_text(level))))
    if config.wiegand != "off":
        checks.append(("wiegand", wiegand_fault is None, wiegand_fault or "Wiegand {} on D0 pin {}, D1 pin {}, "
                       "facility {}".format(config.wiegand, config.wiegand_d0_pin, config.wiegand_d1_pin,
                                            config.wiegand_facility)))
    return checks
