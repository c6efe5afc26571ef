"""Gate relay drivers behind one small interface. Closed is the safe state on every error.

``pulse(ms)`` energises the relay and returns at once; a timer releases it after ``ms``.
Drivers: ``sim`` (records pulses; the default off the device), ``gpio`` (Jetson.GPIO, on the
Jetson's 40-pin header) and ``serial`` (common USB relay boards that take a few command bytes).
With ``gate.guardian`` (the default) a gpio or serial relay is driven by a guardian process
(:mod:`kiosk.gate.guardian`) that releases it even when the kiosk hangs or is killed.

A close that fails is retried at once (a few attempts, short back-off) and then every few seconds.
Until one succeeds the driver never says it is closed: ``state`` is ``"fault"``, ``fault`` says
why, ``is_open`` stays True (it may be) and ``pulse`` refuses to open it again.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, List, Optional, Tuple

from kiosk.config import GateConfig

log = logging.getLogger(__name__)


class GateUnavailable(RuntimeError):
    """The configured gate cannot be driven; the message says why and how to fix it."""


class GateDriver:
    name = "gate"
    close_attempts = 3  # tries of one close before it is a fault
    close_backoff_s = 0.05  # wait after the first failed try, doubled after each next one
    fault_retry_s = 2.0  # while a close has failed, try again this often

    def __init__(self) -> None:
        self._timer: Optional[threading.Timer] = None
        self._lock = threading.Lock()
        self._shut = False
        self.is_open = False  # True while the relay is (or, after a failed close, may be) energised
        self.fault: Optional[str] = None  # why the last close failed; None once a close went through

    @property
    def state(self) -> str:
        """``"open"``, ``"closed"`` or ``"fault"`` (the last close failed: the relay may be energised)."""
        if self.fault is not None:
            return "fault"
        return "open" if self.is_open else "closed"

    def pulse(self, ms: int) -> bool:
        """Open for ``ms`` milliseconds; True if the relay was energised."""
        with self._lock:
            if self._shut:
                log.error("gate %s: not opening: the driver is closed", self.name)
                return False
            self._cancel_timer()
            if self.fault is not None and not self._close_relay():
                log.error("gate %s: not opening: the relay did not close last time (%s)", self.name, self.fault)
                return False
            try:
                self.is_open = True  # a relay that switched and then raised counts as open until closed
                self._energise()
            except Exception as exc:  # any failure: make sure it is closed, report, carry on
                log.error("gate %s: could not open: %s", self.name, exc)
                self._close_relay()
                return False
            self._start_timer(ms / 1000.0)
            return True

    def release(self) -> None:
        """End the pulse now (the timer calls this)."""
        with self._lock:
            if not self._shut:
                self._close_relay()

    def drive_closed(self) -> bool:
        """Cancel a pending pulse and command the relay closed; True when the command went through."""
        with self._lock:
            if self._shut:
                return self.fault is None and not self.is_open
            self._cancel_timer()
            return self._close_relay()

    def read_back(self) -> Optional[bool]:
        """Whether the relay reads energised (True) or released (False); None when the hardware cannot tell."""
        return None

    def close(self) -> bool:
        """Shut down: cancel a pending pulse and leave the gate closed; True when the close went through.
        Idempotent: a second call only reports."""
        with self._lock:
            if self._shut:
                return self.fault is None and not self.is_open
            self._shut = True  # no retry timer from here on
            self._cancel_timer()
            closed = self._close_relay()
            try:
                self._shutdown()
            except Exception as exc:
                log.error("gate %s: could not shut down cleanly: %s", self.name, exc)
            return closed

    # ---- closing, retried (call with the lock held) ----------------------------------------------

    def _close_relay(self) -> bool:
        delay = self.close_backoff_s
        error = ""
        for attempt in range(1, self.close_attempts + 1):
            try:
                self._deenergise()
            except Exception as exc:
                error = str(exc) or type(exc).__name__
                log.log(logging.WARNING if self.fault is None else logging.DEBUG,
                        "gate %s: close attempt %d of %d failed: %s", self.name, attempt, self.close_attempts, error)
                if attempt < self.close_attempts:
                    time.sleep(delay)
                    delay *= 2
                continue
            if self.fault is not None:
                log.warning("gate %s: the relay closed after a fault", self.name)
            self.is_open = False
            self.fault = None
            return True
        if self.fault is None:
            log.error("gate %s: THE RELAY DID NOT CLOSE (%d attempts): %s; retrying every %.0f s, no pulse until it closes",
                      self.name, self.close_attempts, error, self.fault_retry_s)
        self.fault = "the {} relay did not close: {}".format(self.name, error)
        self.is_open = True  # it may still be energised: never report it closed
        if not self._shut:
            self._start_timer(self.fault_retry_s)
        return False

    def _start_timer(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self.release)
        self._timer.daemon = True
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # backend hooks
    def _energise(self) -> None:
        raise NotImplementedError

    def _deenergise(self) -> None:
        raise NotImplementedError

    def _shutdown(self) -> None:
        pass


class SimulatedGate(GateDriver):
    """Records every pulse; used off the device, in the demo and in tests. With ``state_file`` the relay's
    level is also written there ("on" / "off"), so another process (``dabai-kiosk gate``) can read it back."""

    name = "sim"

    def __init__(self, fail: bool = False, state_file: Optional[Path] = None) -> None:
        super().__init__()
        self.pulses: List[Tuple[float, int]] = []
        self.fail = fail
        self.state_file = state_file
        self.level = False
        self._pending_ms = 0

    def pulse(self, ms: int) -> bool:
        self._pending_ms = ms
        return super().pulse(ms)

    def read_back(self) -> Optional[bool]:
        if self.state_file is None:
            return self.level
        return read_sim_state(self.state_file)

    def _energise(self) -> None:
        if self.fail:
            raise OSError("simulated relay fault")
        self._set_level(True)
        self.pulses.append((time.time(), self._pending_ms))
        log.info("gate sim: OPEN for %d ms", self._pending_ms)

    def _deenergise(self) -> None:
        self._set_level(False)

    def _set_level(self, on: bool) -> None:
        self.level = on
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text("on\n" if on else "off\n", encoding="ascii")


def read_sim_state(path: Path) -> Optional[bool]:
    """The simulated relay's level from its state file; None when there is none."""
    try:
        return path.read_text(encoding="ascii").strip() == "on"
    except (OSError, UnicodeDecodeError):
        return None


class UnavailableGate(GateDriver):
    """Stands in for a configured relay that cannot be driven: every pulse fails (so the gate stays closed and
    grants are logged as not opened) and the name says so wherever the gate is printed."""

    def __init__(self, driver: str, reason: str) -> None:
        super().__init__()
        self.name = "{} UNAVAILABLE".format(driver)
        self.reason = reason

    @property
    def state(self) -> str:
        return "unavailable"

    def _energise(self) -> None:
        raise OSError(self.reason)

    def _deenergise(self) -> None:
        pass


class GpioGate(GateDriver):
    """A relay on a Jetson header pin, through Jetson.GPIO (BOARD numbering)."""

    name = "gpio"

    def __init__(self, pin: int, active_high: bool = True) -> None:
        super().__init__()
        try:
            import Jetson.GPIO as GPIO  # type: ignore[import-not-found]
        except (ImportError, RuntimeError) as exc:
            raise GateUnavailable(
                "gate driver gpio needs Jetson.GPIO on a Jetson ({}); set gate.driver = \"sim\" elsewhere".format(exc)
            ) from None
        self.gpio: Any = GPIO
        self.pin = pin
        self.on, self.off = (GPIO.HIGH, GPIO.LOW) if active_high else (GPIO.LOW, GPIO.HIGH)
        try:
            GPIO.setwarnings(False)
            GPIO.setmode(GPIO.BOARD)
            GPIO.setup(pin, GPIO.OUT, initial=self.off)
        except (ValueError, RuntimeError, OSError) as exc:  # not a GPIO pin here, no permission, pin busy
            raise GateUnavailable("gate.gpio_pin = {}: Jetson.GPIO cannot drive it: {}".format(pin, exc)) from None
        self._close_relay()  # setup drove it released already; this also reads as the first close

    def read_back(self) -> Optional[bool]:
        """Jetson.GPIO's input() on an output pin reads the level it drives."""
        return bool(self.gpio.input(self.pin) == self.on)

    def _energise(self) -> None:
        self.gpio.output(self.pin, self.on)

    def _deenergise(self) -> None:
        self.gpio.output(self.pin, self.off)

    def _shutdown(self) -> None:
        self.gpio.cleanup(self.pin)


def parse_hex(key: str, text: str) -> bytes:
    """The command bytes of ``gate.<key>``; GateUnavailable names the key when they are not hex bytes."""
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise GateUnavailable("gate.{} = {!r}: not hex bytes (e.g. A00101A2)".format(key, text)) from None
    if not data:
        raise GateUnavailable("gate.{} is empty: the relay board needs its command bytes".format(key))
    return data


class SerialRelayGate(GateDriver):
    """A USB serial relay board (e.g. LCUS-1: ``A0 01 01 A2`` on, ``A0 01 00 A1`` off). These boards do
    not answer a status query, so there is no read-back: a close is a command that was written."""

    name = "serial"

    def __init__(self, port: str, open_hex: str, close_hex: str, baudrate: int = 9600) -> None:
        super().__init__()
        try:
            import serial  # type: ignore[import-not-found]
        except ImportError:
            raise GateUnavailable("gate driver serial needs pyserial: pip install 'dabai-kiosk[serial]'") from None
        self.off = parse_hex("serial_close_hex", close_hex)
        try:
            self.on = parse_hex("serial_open_hex", open_hex)
            if self.on == self.off:
                raise GateUnavailable("gate.serial_open_hex and gate.serial_close_hex are the same bytes")
        except GateUnavailable:
            _send_once(serial, port, baudrate, self.off)  # a relay this config cannot open is still driven closed
            raise
        try:
            self.port = serial.Serial(port, baudrate=baudrate, timeout=1.0, write_timeout=1.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise GateUnavailable("cannot open gate relay port {}: {}".format(port, exc)) from None
        self._close_relay()  # whatever a killed kiosk left it at: closed first

    def _energise(self) -> None:
        self.port.write(self.on)
        self.port.flush()

    def _deenergise(self) -> None:
        self.port.write(self.off)
        self.port.flush()

    def _shutdown(self) -> None:
        self.port.close()


def _send_once(serial: Any, port: str, baudrate: int, data: bytes) -> None:
    """Write ``data`` to the relay port if it can be opened; a best effort whose failure changes nothing."""
    try:
        with serial.Serial(port, baudrate=baudrate, timeout=1.0, write_timeout=1.0) as link:
            link.write(data)
            link.flush()
    except Exception as exc:  # the caller raises its own, clearer error next
        log.warning("gate serial: could not send the close command to %s: %s", port, exc)


def open_gate_driver(config: GateConfig, state_dir: Optional[Path] = None, guardian: Optional[bool] = None) -> GateDriver:
    """The configured driver, driven closed; raises GateUnavailable with a fix when it cannot be used.

    A gpio or serial relay goes through a guardian process when ``gate.guardian`` is set (``guardian``
    overrides it: the guardian itself and one-shot commands open the device here). ``state_dir`` keeps
    the simulated relay's level in a file (``gate-sim``) for ``dabai-kiosk gate``."""
    use_guardian = config.guardian if guardian is None else guardian
    if config.driver in ("gpio", "serial") and use_guardian:
        from kiosk.gate.guardian import GuardedGate

        return GuardedGate(config)
    if config.driver == "gpio":
        return GpioGate(config.gpio_pin, config.active_high)
    if config.driver == "serial":
        return SerialRelayGate(config.serial_port, config.serial_open_hex, config.serial_close_hex)
    gate = SimulatedGate(state_file=None if state_dir is None else Path(state_dir) / "gate-sim")
    gate.drive_closed()
    return gate
