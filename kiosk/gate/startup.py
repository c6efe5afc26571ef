"""The gate first: opened and driven closed before anything else of the kiosk can fail, closed again at every exit.

A kiosk killed during a pulse leaves its relay energised. The next start must release it even if it then
fails on a bad config, a corrupt database or a missing key, so the relay is opened (from the gate section
alone, see :mod:`kiosk.gate.settings`) and driven closed before any of those is read.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, List, Optional

from kiosk.config import ConfigError, GateConfig, Home
from kiosk.gate.drivers import GateDriver, GateUnavailable, UnavailableGate, open_gate_driver
from kiosk.gate.settings import gate_notes, save_last_good, usable_gate_config

log = logging.getLogger(__name__)


@dataclass
class OpenedGate:
    driver: GateDriver
    config: Optional[GateConfig]  # None when no gate section could be read at all
    problems: List[str] = field(default_factory=list)  # "gate: …", as assemble reports its problems
    notes: List[str] = field(default_factory=list)  # worth saying, not wrong (a simulated gate, a saved copy used)


def open_gate_first(home: Home, config: Optional[GateConfig] = None) -> OpenedGate:
    """The relay of ``config`` (default: the home's gate section, read on its own), driven closed. Never raises:
    a relay that cannot be driven becomes an :class:`UnavailableGate` (every pulse fails) and a problem line.
    A gate section read from the home whose relay opened is kept as the last good copy."""
    notes: List[str] = []
    from_home = config is None
    if config is None:
        try:
            config, notes = usable_gate_config(home)
        except ConfigError as exc:
            reason = "no usable gate settings: {}".format("; ".join(exc.problems))
            return OpenedGate(UnavailableGate("gate", reason), None, ["gate: {} (the gate stays closed)".format(reason)])
    try:
        driver = open_gate_driver(config, state_dir=home.state)
    except GateUnavailable as exc:
        return OpenedGate(UnavailableGate(config.driver, str(exc)), config,
                          ["gate: {} (the gate stays closed)".format(exc)], notes)
    problems = []
    if driver.fault is not None:
        problems.append("gate: {} (no pulse until it closes)".format(driver.fault))
    elif from_home:
        try:
            save_last_good(home, config)
        except OSError as exc:
            log.warning("gate: cannot keep a copy of the gate settings: %s", exc)
    if driver.wiegand_fault:  # the relay works; the panel behind it will not hear from the kiosk
        problems.append("gate: {}".format(driver.wiegand_fault))
    return OpenedGate(driver, config, problems, notes + gate_notes(config))


def close_on_exit(driver: GateDriver) -> None:
    """Close ``driver`` when the interpreter exits, and make SIGTERM (while still at its default, which ends the
    process without any cleanup) raise SystemExit so that the closing code runs. The kiosk later installs its
    own SIGTERM handler, which stops it in order."""
    atexit.register(driver.close)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
