"""Gate relay drivers behind one small interface. Closed is the safe state on every error.

``pulse(ms)`` energises the relay and returns at once; a timer releases it after ``ms``.
Drivers: ``sim`` (records pulses; the default off the device), ``gpio`` (Jetson.GPIO, on the
Jetson's 40-pin header) and ``serial`` (common USB relay boards that take a few command bytes).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List, Optional, Tuple

from kiosk.config import GateConfig

log = logging.getLogger(__name__)


class GateUnavailable(RuntimeError):
    """The configured gate cannot be driven; the message says why and how to fix it."""


class GateDriver:
    name = "gate"

    def __init__(self) -> None:
        self._timer: Optional[threading.Timer] = None
        self._lock = threading.Lock()
        self.is_open = False

    def pulse(self, ms: int) -> bool:
        """Open for ``ms`` milliseconds; True if the relay was energised."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            try:
                self._energise()
                self.is_open = True
            except Exception as exc:  # any failure: make sure it is closed, report, carry on
                log.error("gate %s: could not open: %s", self.name, exc)
                self._safe_close()
                return False
            self._timer = threading.Timer(ms / 1000.0, self.release)
            self._timer.daemon = True
            self._timer.start()
            return True

    def release(self) -> None:
        with self._lock:
            self._safe_close()

    def close(self) -> None:
        """Shut down: cancel a pending pulse and leave the gate closed."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._safe_close()
            self._shutdown()

    def _safe_close(self) -> None:
        try:
            self._deenergise()
        except Exception as exc:
            log.error("gate %s: could not close cleanly: %s", self.name, exc)
        self.is_open = False

    # backend hooks
    def _energise(self) -> None:
        raise NotImplementedError

    def _deenergise(self) -> None:
        raise NotImplementedError

    def _shutdown(self) -> None:
        pass


class SimulatedGate(GateDriver):
    """Records every pulse; used off the device, in the demo and in tests."""

    name = "sim"

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.pulses: List[Tuple[float, int]] = []
        self.fail = fail
        self._pending_ms = 0

    def pulse(self, ms: int) -> bool:
        self._pending_ms = ms
        return super().pulse(ms)

    def _energise(self) -> None:
        if self.fail:
            raise OSError("simulated relay fault")
        self.pulses.append((time.time(), self._pending_ms))
        log.info("gate sim: OPEN for %d ms", self._pending_ms)

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
        GPIO.setwarnings(False)
        GPIO.setmode(GPIO.BOARD)
        GPIO.setup(pin, GPIO.OUT, initial=self.off)

    def _energise(self) -> None:
        self.gpio.output(self.pin, self.on)

    def _deenergise(self) -> None:
        self.gpio.output(self.pin, self.off)

    def _shutdown(self) -> None:
        self.gpio.cleanup(self.pin)


class SerialRelayGate(GateDriver):
    """A USB serial relay board (e.g. LCUS-1: ``A0 01 01 A2`` on, ``A0 01 00 A1`` off)."""

    name = "serial"

    def __init__(self, port: str, open_hex: str, close_hex: str, baudrate: int = 9600) -> None:
        super().__init__()
        try:
            import serial  # type: ignore[import-not-found]
        except ImportError:
            raise GateUnavailable("gate driver serial needs pyserial: pip install 'dabai-kiosk[serial]'") from None
        try:
            self.on, self.off = bytes.fromhex(open_hex), bytes.fromhex(close_hex)
        except ValueError as exc:
            raise GateUnavailable("gate serial command bytes are not hex: {}".format(exc)) from None
        try:
            self.port = serial.Serial(port, baudrate=baudrate, timeout=1.0, write_timeout=1.0)
        except (serial.SerialException, OSError) as exc:
            raise GateUnavailable("cannot open gate relay port {}: {}".format(port, exc)) from None
        self._deenergise()

    def _energise(self) -> None:
        self.port.write(self.on)
        self.port.flush()

    def _deenergise(self) -> None:
        self.port.write(self.off)
        self.port.flush()

    def _shutdown(self) -> None:
        self.port.close()


def open_gate_driver(config: GateConfig) -> GateDriver:
    """The configured driver; raises GateUnavailable with a fix when it cannot be used."""
    if config.driver == "gpio":
        return GpioGate(config.gpio_pin, config.active_high)
    if config.driver == "serial":
        return SerialRelayGate(config.serial_port, config.serial_open_hex, config.serial_close_hex)
    return SimulatedGate()
