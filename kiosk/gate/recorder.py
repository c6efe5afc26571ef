"""A recording relay: a pseudo-terminal that stands in for a USB serial relay board (and, :class:`ModbusSlave`, for a
Modbus RTU relay board).

The kiosk (or a guardian, or ``dabai-kiosk gate close``) opens the pty's slave side with pyserial as
``gate.serial_port``, exactly as it opens ``/dev/ttyUSB0``: the real :class:`~kiosk.gate.drivers.SerialRelayGate`
writes its real command bytes. The recorder reads the master side and records every command with the
time it arrived, so a test or the fault benchmark can tell, even after the kiosk was SIGKILLed, what
the relay's last command was and when it came::

    from kiosk.config import Config, replace, save_config
    from kiosk.gate.recorder import RelayRecorder

    with RelayRecorder() as relay:                     # start(): the pty and its reader thread
        config = replace(Config(), "gate", **relay.gate_settings())   # driver = serial, serial_port = the pty
        save_config(config, home.config)
        ... start the kiosk and make it pulse ...
        on = relay.wait_for("on", timeout=2.0)         # the RelayEvent, or None
        ... os.kill(pid, signal.SIGKILL) ...
        closed = relay.wait_for("off", after=on, timeout=2.0)  # the command that followed it, or None
        assert relay.is_on() is False                  # the last command was "off"
        print(relay.events)                            # every command: RelayEvent(t, command, data)

The recorder keeps the slave side open itself, so a writer closing or dying never ends the recording.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, TypeVar

DEFAULT_ON = "A00101A2"  # gate.serial_open_hex's default (LCUS-1 relay 1 on)
DEFAULT_OFF = "A00100A1"
Board = TypeVar("Board", bound="_PtyBoard")


@dataclass(frozen=True)
class RelayEvent:
    t: float  # time.time() when the command's last byte was read
    command: str  # "on", "off" or "unknown" (bytes that are neither command)
    data: bytes


class _PtyBoard:
    """A pseudo-terminal whose slave side a driver opens with pyserial; a thread reads the master side and hands
    each chunk to :meth:`_received`. Events are appended to ``events`` under ``_changed`` (notified)."""

    thread_name = "pty-board"

    def __init__(self) -> None:
        self.events: List[Any] = []
        self.port = ""  # the slave's name (/dev/pts/N) once started
        self._master = -1
        self._slave = -1
        self._buffer = b""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._changed = threading.Condition()

    def start(self: Board) -> Board:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # bytes pass unchanged (pyserial sets raw mode as well)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._read_loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self: Board) -> Board:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _wait(self, matches: Callable[[Any], bool], after: Any, timeout: float) -> Any:
        """The first event (later than the event ``after``) that ``matches``, waited for up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                start = 0 if after is None else next(i + 1 for i, e in enumerate(self.events) if e is after)
                for event in self.events[start:]:
                    if matches(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 1024)
            except OSError:  # cannot happen while the slave is open here; end quietly if it does
                return
            self._received(chunk)

    def _received(self, chunk: bytes) -> None:
        raise NotImplementedError


class RelayRecorder(_PtyBoard):
    """A pty relay board that records every command (see the module's documentation)."""

    thread_name = "relay-recorder"

    def __init__(self, open_hex: str = DEFAULT_ON, close_hex: str = DEFAULT_OFF) -> None:
        super().__init__()
        self.open_hex, self.close_hex = open_hex, close_hex
        self._commands = {"on": bytes.fromhex(open_hex), "off": bytes.fromhex(close_hex)}
        self.events: List[RelayEvent] = []

    def gate_settings(self) -> Dict[str, Any]:
        """The ``[gate]`` keys that point a kiosk at this relay."""
        return {"driver": "serial", "serial_port": self.port, "serial_open_hex": self.open_hex,
                "serial_close_hex": self.close_hex}

    def commands(self) -> List[RelayEvent]:
        """The recorded on/off commands (unknown bytes left out), oldest first."""
        with self._changed:
            return [e for e in self.events if e.command != "unknown"]

    def last(self) -> Optional[RelayEvent]:
        """The last on/off command, or None when there was none."""
        recorded = self.commands()
        return recorded[-1] if recorded else None

    def is_on(self) -> Optional[bool]:
        """Whether the relay's last command energised it; None when it got no command yet."""
        last = self.last()
        return None if last is None else last.command == "on"

    def wait_for(self, command: str, since: float = 0.0, timeout: float = 2.0,
                 after: Optional[RelayEvent] = None) -> Optional[RelayEvent]:
        """The first ``command`` ("on" / "off") recorded at or after ``since`` (time.time()) and, with ``after``,
        later than that event; waits up to ``timeout`` seconds for it; None if it did not come.

        An event's time is when the recorder read it, which a busy machine can delay: to find the command that
        followed another one, ask with ``after`` (e.g. the "off" after an "on"), not with a time."""
        return self._wait(lambda e: e.command == command and e.t >= since, after, timeout)

    # ---- the reader thread ------------------------------------------------------------------------

    def _received(self, chunk: bytes) -> None:
        with self._changed:
            self._buffer += chunk
            self._parse(time.time())
            self._changed.notify_all()

    def _parse(self, now: float) -> None:
        while self._buffer:
            for name, data in self._commands.items():
                if self._buffer.startswith(data):
                    self.events.append(RelayEvent(now, name, data))
                    self._buffer = self._buffer[len(data):]
                    break
            else:
                if any(data.startswith(self._buffer) for data in self._commands.values()):
                    return  # the start of a command: wait for the rest
                self.events.append(RelayEvent(now, "unknown", self._buffer[:1]))
                self._buffer = self._buffer[1:]


# ---- a Modbus RTU relay board on a pty ----------------------------------------------------------------


@dataclass(frozen=True)
class ModbusEvent:
    t: float  # time.time() when the request was read
    function: int  # 5 (write single coil) or 1 (read coils)
    coil: int
    value: Optional[bool]  # the coil written (function 5), None for a read
    answered: str  # "echo", "status", "exception", "bad crc", "silent"


class ModbusSlave(_PtyBoard):
    """A pty that answers like a Modbus RTU relay board (address ``address``, coils 0-7), for the real
    :class:`~kiosk.gate.drivers.ModbusRelayGate` opened with pyserial. Faults to inject, by setting ``mode``:
    ``"ok"``, ``"silent"`` (no answer: a timeout), ``"bad crc"`` (a damaged answer), ``"exception"`` (exception 4,
    slave device failure) and ``"stuck"`` (answers every write but the coil stays ON once switched on)::

        with ModbusSlave() as board:
            config = GateConfig(**board.gate_settings())
            ...
            assert board.coils[0] is False and board.writes()[-1].value is False
    """

    thread_name = "modbus-slave"

    def __init__(self, address: int = 1) -> None:
        super().__init__()
        self.address = address
        self.coils = [False] * 8
        self.mode = "ok"
        self.events: List[ModbusEvent] = []

    def gate_settings(self) -> Dict[str, Any]:
        """The ``[gate]`` keys that point a kiosk at this board (short timeout: the tests wait for it)."""
        return {"driver": "modbus", "serial_port": self.port, "modbus_address": self.address,
                "modbus_timeout_ms": 100}

    def writes(self) -> List[ModbusEvent]:
        with self._changed:
            return [e for e in self.events if e.function == 5]

    def wait_for(self, value: bool, coil: int = 0, timeout: float = 2.0,
                 after: Optional[ModbusEvent] = None) -> Optional[ModbusEvent]:
        """The first write of ``value`` to ``coil`` (after the event ``after``), waited for up to ``timeout`` s."""
        return self._wait(lambda e: e.function == 5 and e.coil == coil and e.value is value, after, timeout)

    def _received(self, chunk: bytes) -> None:
        from kiosk.gate.modbus import crc16, with_crc

        self._buffer += chunk
        while len(self._buffer) >= 8:  # both requests the gate sends are 8 bytes
            frame, self._buffer = self._buffer[:8], self._buffer[8:]
            if crc16(frame[:6]) != frame[6] | frame[7] << 8 or frame[0] != self.address:
                continue  # a real slave ignores a damaged frame or another address's
            function, coil, value = frame[1], frame[2] << 8 | frame[3], frame[4] << 8 | frame[5]
            answer = b""
            written: Optional[bool] = None
            if function == 5:
                written = value == 0xFF00
                if self.mode not in ("exception", "silent") and coil < len(self.coils):
                    self.coils[coil] = written or (self.mode == "stuck" and self.coils[coil])
                answer = frame
                kind = "echo"
            elif function == 1:
                answer = with_crc(bytes((self.address, 1, 1, int(self.coils[coil]) if coil < len(self.coils) else 0)))
                kind = "status"
            else:
                answer, kind = with_crc(bytes((self.address, function | 0x80, 1))), "exception"
            if self.mode == "exception":
                answer, kind = with_crc(bytes((self.address, function | 0x80, 4))), "exception"
            elif self.mode == "bad crc":
                answer, kind = answer[:-1] + bytes(((answer[-1] + 1) & 0xFF,)), "bad crc"
            elif self.mode == "silent":
                answer, kind = b"", "silent"
            with self._changed:  # recorded before the answer goes out: whoever got the answer sees the event
                self.events.append(ModbusEvent(time.time(), function, coil, written, kind))
                self._changed.notify_all()
            if answer:
                os.write(self._master, answer)
