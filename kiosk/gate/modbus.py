"""Modbus RTU relay boards on RS485: the frames, and the gate driver that speaks them.

The common 1/2/4/8-relay boards (Waveshare, Eletechsup and alike) are Modbus RTU slaves: each relay is a coil,
switched by function 05 *Write Single Coil* and read by function 01 *Read Coils*. From the Modbus Application
Protocol Specification V1.1b3 (sections 6.1 and 6.5) and Modbus over Serial Line V1.02 (section 2.5.1.2, CRC):

* request 05: ``address, 0x05, coil (2 bytes, big-endian), 0xFF00 = on / 0x0000 = off, CRC``; a slave that did it
  answers with the same 8 bytes (the echo);
* request 01: ``address, 0x01, first coil (2), quantity = 1 (2), CRC``; answer ``address, 0x01, byte count = 1,
  status byte (bit 0 = the coil), CRC``;
* an exception answer is ``address, function | 0x80, exception code, CRC`` (5 bytes);
* the CRC is CRC-16/MODBUS (reflected polynomial 0xA001, initial 0xFFFF), sent low byte first.

Example: address 1, coil 0 on = ``01 05 00 00 FF 00 8C 3A``; off = ``01 05 00 00 00 00 CD CA``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from kiosk.config import GateConfig

log = logging.getLogger(__name__)

WRITE_SINGLE_COIL = 0x05
READ_COILS = 0x01
ON, OFF = 0xFF00, 0x0000
EXCEPTIONS = {1: "illegal function", 2: "illegal data address (no such coil?)", 3: "illegal data value",
              4: "slave device failure", 6: "slave device busy"}


class ModbusError(OSError):
    """No answer, a damaged one or an exception from the relay board; a fault of the gate relay."""


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of ``data`` (poly 0xA001 reflected, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))  # low byte first


def _check_address(address: int, coil: int) -> None:
    if not 1 <= address <= 247:
        raise ValueError("Modbus address {} is not a slave address (1-247)".format(address))
    if not 0 <= coil <= 0xFFFF:
        raise ValueError("coil {} is out of range (0-65535)".format(coil))


def write_coil_frame(address: int, coil: int, on: bool) -> bytes:
    """The function 05 request that switches ``coil`` of slave ``address`` on or off."""
    _check_address(address, coil)
    value = ON if on else OFF
    return with_crc(bytes((address, WRITE_SINGLE_COIL, coil >> 8, coil & 0xFF, value >> 8, value & 0xFF)))


def read_coil_frame(address: int, coil: int) -> bytes:
    """The function 01 request that reads the one coil ``coil``."""
    _check_address(address, coil)
    return with_crc(bytes((address, READ_COILS, coil >> 8, coil & 0xFF, 0x00, 0x01)))


def check_frame(frame: bytes, address: int, function: int) -> bytes:
    """The frame's body without its CRC once its CRC, address and function are right; ModbusError says what is
    wrong otherwise (an exception answer included)."""
    if len(frame) < 4:
        raise ModbusError("short answer ({} bytes: {})".format(len(frame), frame.hex(" ") or "nothing"))
    body, crc = frame[:-2], frame[-2] | frame[-1] << 8
    if crc16(body) != crc:
        raise ModbusError("bad CRC in the answer {} (expected {:04X})".format(frame.hex(" "), crc16(body)))
    if body[0] != address:
        raise ModbusError("answer from address {} instead of {}".format(body[0], address))
    if body[1] == function | 0x80:
        code = body[2] if len(body) > 2 else 0
        raise ModbusError("the board refused function {:02X}: exception {} ({})".format(
            function, code, EXCEPTIONS.get(code, "unknown")))
    if body[1] != function:
        raise ModbusError("answer to function {:02X} instead of {:02X}".format(body[1], function))
    return body


def parse_write_echo(frame: bytes, request: bytes) -> None:
    """A function 05 answer must be the request's echo."""
    check_frame(frame, request[0], WRITE_SINGLE_COIL)
    if frame != request:
        raise ModbusError("the board's echo {} differs from the request {}".format(frame.hex(" "), request.hex(" ")))


def parse_read_coil(frame: bytes, address: int) -> bool:
    """The coil's state from a function 01 answer for one coil."""
    body = check_frame(frame, address, READ_COILS)
    if len(body) != 4 or body[2] != 1:
        raise ModbusError("a read-coils answer of the wrong length: {}".format(frame.hex(" ")))
    return bool(body[3] & 0x01)


def answer_length(request: bytes) -> int:
    """Bytes of the normal answer to ``request`` (an exception answer is 5)."""
    return 8 if request[1] == WRITE_SINGLE_COIL else 6


# ---- the driver ------------------------------------------------------------------------------------


class ModbusClient:
    """One request and its answer at a time on a serial port (pyserial), with the RTU silent interval kept."""

    def __init__(self, port: Any, address: int, baud: int, timeout_s: float) -> None:
        self.port = port  # a pyserial Serial whose timeout is ``timeout_s``
        self.address = address
        self.timeout_s = timeout_s
        # 3.5 characters of silence between frames (11 bits a character); 1.75 ms above 19200 baud (the spec).
        self.gap_s = 1.75e-3 if baud > 19200 else 3.5 * 11 / baud
        self._last = 0.0
        # One transaction at a time: the release timer and a read-back (the guardian answers every command with
        # one) come from different threads, and two requests on the bus at once get each other's answers.
        self._lock = threading.Lock()

    def transact(self, request: bytes) -> bytes:
        with self._lock:
            wait = self._last + self.gap_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.port.reset_input_buffer()  # a late answer to an earlier request is not this one's
            self.port.write(request)
            self.port.flush()
            try:
                return self._read(answer_length(request))
            finally:
                self._last = time.monotonic()

    def _read(self, expected: int) -> bytes:
        # pyserial's read returns at ``expected`` bytes or at the port's timeout; an exception answer (5 bytes)
        # comes back at the timeout and is parsed as such.
        data = bytes(self.port.read(expected))
        if not data:
            raise ModbusError("no answer from Modbus address {} within {:.0f} ms".format(
                self.address, self.timeout_s * 1000))
        return data

    def write_coil(self, coil: int, on: bool) -> None:
        request = write_coil_frame(self.address, coil, on)
        parse_write_echo(self.transact(request), request)

    def read_coil(self, coil: int) -> bool:
        return parse_read_coil(self.transact(read_coil_frame(self.address, coil)), self.address)


def open_modbus_port(config: GateConfig) -> Any:
    """The pyserial port for ``config`` (8 data bits, the configured parity and stop bits)."""
    from kiosk.gate.drivers import GateUnavailable

    try:
        import serial  # type: ignore[import-not-found]
    except ImportError:
        raise GateUnavailable("gate driver modbus needs pyserial: pip install 'dabai-kiosk[serial]'") from None
    parity = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}[config.modbus_parity]
    try:
        return serial.Serial(config.serial_port, baudrate=config.modbus_baud, bytesize=8, parity=parity,
                             stopbits=config.modbus_stop_bits, timeout=config.modbus_timeout_ms / 1000.0,
                             write_timeout=1.0)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise GateUnavailable("cannot open the Modbus relay port {}: {}".format(config.serial_port, exc)) from None


def describe_link(config: GateConfig) -> str:
    return "address {} coil {} on {} ({} {}{}{})".format(
        config.modbus_address, config.modbus_coil, config.serial_port, config.modbus_baud, 8, config.modbus_parity,
        config.modbus_stop_bits)


def new_client(config: GateConfig, port: Optional[Any] = None) -> ModbusClient:
    return ModbusClient(port if port is not None else open_modbus_port(config), config.modbus_address,
                        config.modbus_baud, config.modbus_timeout_ms / 1000.0)
