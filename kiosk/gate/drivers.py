"""Gate relay drivers behind one small interface. Closed is the safe state on every error.

``pulse(ms)`` energises the relay and returns at once; a timer releases it after ``ms``.
Drivers: ``sim`` (records pulses; the default off the device), ``gpio`` (Jetson.GPIO, on the
Jetson's 40-pin header, either polarity), ``serial`` (common USB relay boards that take a few command bytes)
and ``modbus`` (Modbus RTU relay boards on RS485, :mod:`kiosk.gate.modbus`).
With ``gate.guardian`` (the default) a gpio, serial or modbus relay is driven by a guardian process
(:mod:`kiosk.gate.guardian`) that releases it even when the kiosk hangs or is killed.

Beside any relay, ``gate.wiegand`` sends the resident's card number to an access-control panel on a grant
(:meth:`GateDriver.send_card`, :mod:`kiosk.gate.wiegand`). A Wiegand failure is ``wiegand_fault``: logged and
shown, and it never changes what the relay does.

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
from kiosk.gate.wiegand import WiegandError, WiegandOutput, card_problem, encode

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
        self.wiegand: Optional[WiegandSender] = None  # set by attach_wiegand when gate.wiegand is on
        self.wiegand_fault: Optional[str] = None  # why the last Wiegand frame (or its setup) failed
        self._wiegand_lock = threading.Lock()

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

    def send_card(self, card: int) -> bool:
        """Send ``card`` (the resident's number) as a Wiegand frame, when ``gate.wiegand`` is on; True when it went
        out. A failure sets ``wiegand_fault`` and logs; it never touches the relay."""
        with self._wiegand_lock:
            if self.wiegand is None:
                if self.wiegand_fault:
                    log.error("gate: Wiegand card %d not sent: %s", card, self.wiegand_fault)
                return False
            try:
                sent = self.wiegand.send_card(card)
            except (WiegandError, OSError) as exc:
                self.wiegand_fault = "Wiegand card {} not sent: {}".format(card, exc)
                log.error("gate: %s", self.wiegand_fault)
                return False
            self.wiegand_fault = None
            log.info("gate: Wiegand %s sent (card %d; pulses up to %.0f us)", self.wiegand.fmt, card,
                     sent.longest_pulse_us)
            return True

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
        with self._wiegand_lock:
            if self.wiegand is not None:
                self.wiegand.output.close()
                self.wiegand = None
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
        self._close_relay()  # setup drove it released already; this reads it back as the first close

    def read_back(self) -> Optional[bool]:
        """Jetson.GPIO's input() on an output pin reads the level it drives."""
        return bool(self.gpio.input(self.pin) == self.on)

    def _energise(self) -> None:
        self._drive(self.on)

    def _deenergise(self) -> None:
        self._drive(self.off)

    def _drive(self, level: Any) -> None:
        """Set the pin and read it back: a pin that does not read what it was driven to is a fault (a close that
        does not read back is retried, then reported; the gate does not open again until one does)."""
        self.gpio.output(self.pin, level)
        read = self.gpio.input(self.pin)
        if read != level:
            raise OSError("pin {} reads {} after being driven {} (is it muxed as GPIO? dabai-kiosk doctor)".format(
                self.pin, _level(self.gpio, read), _level(self.gpio, level)))

    def _shutdown(self) -> None:
        self.gpio.cleanup(self.pin)


def _level(gpio: Any, value: Any) -> str:
    return "HIGH" if value == gpio.HIGH else "LOW" if value == gpio.LOW else repr(value)


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


class ModbusRelayGate(GateDriver):
    """A Modbus RTU relay board on RS485: function 05 switches the coil, the board's echo confirms it, and a close
    is read back with function 01 (a coil that still reads on is a failed close, retried, then a fault)."""

    name = "modbus"

    def __init__(self, config: GateConfig) -> None:
        super().__init__()
        from kiosk.gate.modbus import new_client

        self.coil = config.modbus_coil
        self.client = new_client(config)  # GateUnavailable when the port cannot be opened
        self._read_error = ""
        self._close_relay()  # whatever a killed kiosk left it at: closed first

    def read_back(self) -> Optional[bool]:
        try:
            on = self.client.read_coil(self.coil)
        except OSError as exc:
            if str(exc) != self._read_error:  # once per new error: the guardian asks at every heartbeat
                log.warning("gate modbus: read-back failed: %s", exc)
            self._read_error = str(exc)
            return None
        self._read_error = ""
        return on

    def _energise(self) -> None:
        self.client.write_coil(self.coil, True)

    def _deenergise(self) -> None:
        from kiosk.gate.modbus import ModbusError

        self.client.write_coil(self.coil, False)
        if self.client.read_coil(self.coil):
            raise ModbusError("coil {} still reads ON after it was switched off".format(self.coil))

    def _shutdown(self) -> None:
        self.client.port.close()


class WiegandSender:
    """The configured Wiegand format and facility code, and the two lines that carry them."""

    def __init__(self, fmt: str, facility: int, output: WiegandOutput) -> None:
        self.fmt = fmt
        self.facility = facility
        self.output = output

    def send_card(self, card: int) -> Any:
        return self.output.send(encode(self.fmt, self.facility, card))


def wiegand_setup_problem(config: GateConfig) -> Optional[str]:
    """Why the Wiegand settings cannot work whatever the hardware (None when they can, or Wiegand is off)."""
    if config.wiegand == "off":
        return None
    pins = (config.wiegand_d0_pin, config.wiegand_d1_pin)
    if pins[0] == pins[1]:
        return "gate.wiegand_d0_pin and gate.wiegand_d1_pin are the same pin ({})".format(pins[0])
    if config.driver == "gpio" and config.gpio_pin in pins:
        return "gate.wiegand_d{}_pin = {} is the relay's pin (gate.gpio_pin): a frame would pulse the relay".format(
            pins.index(config.gpio_pin), config.gpio_pin)
    if config.wiegand_interval_us <= 2 * config.wiegand_pulse_us:
        return "gate.wiegand_interval_us = {}: must be more than twice gate.wiegand_pulse_us ({})".format(
            config.wiegand_interval_us, config.wiegand_pulse_us)
    return card_problem(config.wiegand, config.wiegand_facility, 0)


def attach_wiegand(driver: GateDriver, config: GateConfig) -> None:
    """Give ``driver`` the configured Wiegand output; one that cannot be set up is a ``wiegand_fault``, never a
    reason to refuse the relay."""
    if config.wiegand == "off":
        return
    problem = wiegand_setup_problem(config)
    if problem is None:
        try:
            output = WiegandOutput(config.wiegand_d0_pin, config.wiegand_d1_pin, config.wiegand_pulse_us,
                                   config.wiegand_interval_us, inverted=config.wiegand_inverted)
        except (OSError, WiegandError) as exc:
            problem = str(exc)
        else:
            driver.wiegand = WiegandSender(config.wiegand, config.wiegand_facility, output)
            return
    driver.wiegand_fault = "Wiegand output unavailable: {}".format(problem)
    log.error("gate: %s", driver.wiegand_fault)


def open_gate_driver(config: GateConfig, state_dir: Optional[Path] = None, guardian: Optional[bool] = None) -> GateDriver:
    """The configured driver, driven closed; raises GateUnavailable with a fix when it cannot be used.

    A gpio, serial or modbus relay goes through a guardian process when ``gate.guardian`` is set (``guardian``
    overrides it: the guardian itself and one-shot commands open the device here). ``state_dir`` keeps
    the simulated relay's level in a file (``gate-sim``) for ``dabai-kiosk gate``."""
    use_guardian = config.guardian if guardian is None else guardian
    if config.driver in GUARDED_DRIVERS and use_guardian:
        from kiosk.gate.guardian import GuardedGate

        return GuardedGate(config)  # the guardian opens the relay and the Wiegand lines itself
    driver: GateDriver
    if config.driver == "gpio":
        driver = GpioGate(config.gpio_pin, not config.active_low)
    elif config.driver == "serial":
        driver = SerialRelayGate(config.serial_port, config.serial_open_hex, config.serial_close_hex)
    elif config.driver == "modbus":
        driver = ModbusRelayGate(config)
    else:
        driver = SimulatedGate(state_file=None if state_dir is None else Path(state_dir) / "gate-sim")
        driver.drive_closed()
    attach_wiegand(driver, config)
    return driver


GUARDED_DRIVERS = ("gpio", "serial", "modbus")  # real relays: driven through the guardian when gate.guardian is on
