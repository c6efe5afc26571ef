"""The gate guardian: a small child process that owns the relay (and the Wiegand lines), so the gate closes whatever
happens to the kiosk.

The kiosk's own timer cannot release the relay when its interpreter deadlocks, a C call holds the GIL
or the process is killed (SIGKILL, the OOM killer): the relay keeps its last command, ON. The guardian
runs the same driver code (:mod:`kiosk.gate.drivers`) in a process that does nothing else:

* it releases every pulse after its length on its own clock, never later than ``gate.max_pulse_ms``;
* it releases the relay and exits when its command pipe closes (the kiosk died, or was killed after a
  hang) and when the kiosk has been silent for ``gate.guardian_timeout_s`` (hung with the pipe open);
* it ignores SIGINT (Ctrl-C is the kiosk's to handle) and releases the relay on SIGTERM.

Protocol: ``python -m kiosk.gate.guardian '<gate section as JSON>'``. One UTF-8 line per command on
stdin, one JSON line per answer on stdout, strictly in turn:

* on start: ``{"ready": true, "state": ..., "fault": ...}`` once the device is open and driven closed,
  or ``{"unavailable": "why"}`` (and exit status 3) when it cannot be opened;
* ``pulse MS`` energises for min(MS, max_pulse_ms) ms; ``close`` releases now (retried);
  ``wiegand CARD`` sends the card number as a Wiegand frame (``gate.wiegand``; timed here, in a process with
  nothing else to run, not in the busy kiosk); ``status`` and ``ping`` (the heartbeat) change nothing. Every answer
  is ``{"ok": bool, "state": "open|closed|fault", "fault": str|null, "read_back": bool|null, "error": str|null,
  "wiegand_fault": str|null}``.

:class:`GuardedGate` is the kiosk's side: a :class:`~kiosk.gate.drivers.GateDriver` that sends these commands,
heartbeats, and replaces a guardian that died or stopped answering (a new one drives the relay closed first).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from kiosk.config import GateConfig, config_from_dict
from kiosk.gate.drivers import GateDriver, GateUnavailable, open_gate_driver

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0  # a Python start and the device opened, on a busy Jetson
REPLY_TIMEOUT_S = 5.0  # longer than a close retried three times with 1 s serial write timeouts
RESPAWN_AFTER_FAILURE_S = 30.0  # the heartbeat does not restart a guardian that failed to start more often


# ---- the guardian process ---------------------------------------------------------------------


def _answer(driver: GateDriver, ok: bool, error: Optional[str] = None) -> Dict[str, Any]:
    try:
        read_back = driver.read_back()
    except Exception as exc:  # a read-back that fails is no read-back
        log.warning("gate guardian: read-back failed: %s", exc)
        read_back = None
    return {"ok": ok, "state": driver.state, "fault": driver.fault, "read_back": read_back, "error": error,
            "wiegand_fault": driver.wiegand_fault}


def handle(driver: GateDriver, config: GateConfig, line: str) -> Dict[str, Any]:
    """The answer to one command line."""
    word, _, arg = line.partition(" ")
    if word == "pulse":
        try:
            ms = int(arg)
        except ValueError:
            return _answer(driver, False, "pulse takes a length in ms, not {!r}".format(arg))
        if ms <= 0:
            return _answer(driver, False, "pulse length must be positive")
        ms = min(ms, config.max_pulse_ms)
        ok = driver.pulse(ms)
        return _answer(driver, ok, None if ok else driver.fault or "the relay did not open")
    if word == "close":
        ok = driver.drive_closed()
        return _answer(driver, ok, driver.fault)
    if word == "wiegand":
        try:
            card = int(arg)
        except ValueError:
            return _answer(driver, False, "wiegand takes a card number, not {!r}".format(arg))
        ok = driver.send_card(card)
        return _answer(driver, ok, None if ok else driver.wiegand_fault)
    if word in ("status", "ping"):
        return _answer(driver, True)
    return _answer(driver, False, "unknown command {!r}".format(word))


def serve(driver: GateDriver, config: GateConfig, fd: int, send: Any) -> str:
    """Answer commands from ``fd`` until it closes or stays silent too long; returns why it stopped."""
    timeout = config.guardian_timeout_s
    heard = time.monotonic()
    buffer = b""
    while True:
        left = heard + timeout - time.monotonic()
        if left <= 0:
            return "no word from the kiosk for {:.1f} s".format(timeout)
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return "the kiosk closed the pipe"
        heard = time.monotonic()
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            text = line.decode("utf-8", "replace").strip()
            if text:
                send(handle(driver, config, text))


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s gate-guardian: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    out = sys.stdout

    def send(message: Dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    config = config_from_dict({"gate": json.loads(args[0])}, "<guardian>").gate
    try:
        driver = open_gate_driver(config, guardian=False)
    except GateUnavailable as exc:
        send({"unavailable": str(exc)})
        return 3
    closed = False
    try:
        send({"ready": True, "state": driver.state, "fault": driver.fault, "wiegand_fault": driver.wiegand_fault})
        why = serve(driver, config, sys.stdin.fileno(), send)
        log.log(logging.ERROR if why.startswith("no word") else logging.INFO, "%s: releasing the relay", why)
    except BrokenPipeError:
        log.error("the kiosk is gone: releasing the relay")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when stdout is flushed
    finally:
        closed = driver.close()
    if not closed:
        log.error("THE RELAY DID NOT CLOSE: %s", driver.fault)
    return 0 if closed else 1


# ---- the kiosk's side ---------------------------------------------------------------------------


class GuardedGate(GateDriver):
    """The configured relay, driven through a guardian process (see the module's documentation)."""

    close_attempts = 1  # the guardian retries each close itself; a dead or silent one is replaced once

    def __init__(self, config: GateConfig) -> None:
        super().__init__()
        self.config = config
        self.name = config.driver
        self._io = threading.Lock()  # one command and its answer at a time
        self._proc: Optional[subprocess.Popen] = None  # type: ignore[type-arg]
        self._buffer = b""
        self._ms = 0
        self._respawn_at = 0.0
        self._spawn()  # GateUnavailable when the device cannot be opened
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="gate-heartbeat", daemon=True)
        self._beat.start()

    @property
    def pid(self) -> Optional[int]:
        """The guardian's process id (None while there is none)."""
        return None if self._proc is None else self._proc.pid

    def pulse(self, ms: int) -> bool:
        self._ms = ms
        return super().pulse(ms)

    def read_back(self) -> Optional[bool]:
        try:
            answer = self._call("status")
        except OSError:
            return None
        self._note_wiegand(answer)
        value = answer.get("read_back")
        return None if value is None else bool(value)

    def send_card(self, card: int) -> bool:
        """The guardian sends the frame (its own process keeps the microsecond timing); never touches the relay."""
        if self.config.wiegand == "off":
            return False
        with self._wiegand_lock:
            try:
                answer = self._call("wiegand {}".format(int(card)), retry=False)
            except OSError as exc:
                self.wiegand_fault = "Wiegand card {} not sent: {}".format(card, exc)
                log.error("gate %s: %s", self.name, self.wiegand_fault)
                return False
            self._note_wiegand(answer)
            return bool(answer.get("ok"))

    def _note_wiegand(self, answer: Dict[str, Any]) -> None:
        fault = answer.get("wiegand_fault")
        self.wiegand_fault = None if fault is None else str(fault)

    # ---- driver hooks (the base class holds its lock) ------------------------------------------

    def _energise(self) -> None:
        answer = self._call("pulse {}".format(self._ms), retry=False)
        if not answer.get("ok"):
            raise OSError(answer.get("error") or "the relay did not open")

    def _deenergise(self) -> None:
        answer = self._call("close")
        if not answer.get("ok"):
            raise OSError(answer.get("error") or answer.get("fault") or "the relay did not close")

    def _shutdown(self) -> None:
        self._stop.set()
        if self._beat is not threading.current_thread():
            self._beat.join(REPLY_TIMEOUT_S + 1)
        with self._io:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # end of commands: the guardian releases the relay and exits
                proc.wait(REPLY_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired):
                log.error("gate guardian %d did not exit: killed", proc.pid)
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    # ---- the guardian process -------------------------------------------------------------------

    def _spawn(self) -> None:
        """Start a guardian and wait until it has opened the relay and driven it closed (lock held or in __init__)."""
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # this kiosk package, installed or not
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        config = json.dumps(dataclasses.asdict(self.config))
        self._buffer = b""
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "kiosk.gate.guardian", config], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                bufsize=0, env=env, start_new_session=True,  # Ctrl-C and the terminal's hang-up are the kiosk's
            )
        except OSError as exc:
            raise GateUnavailable("cannot start the gate guardian: {}".format(exc)) from None
        try:
            hello = self._read(START_TIMEOUT_S)
        except OSError as exc:
            self._kill()
            raise GateUnavailable("the gate guardian did not start: {}".format(exc)) from None
        if "unavailable" in hello:
            self._kill()
            raise GateUnavailable(str(hello["unavailable"]))
        if hello.get("fault"):
            self.fault = str(hello["fault"])
            self.is_open = True
        self._note_wiegand(hello)
        log.info("gate %s: guardian %d ready (%s)", self.name, self._proc.pid, hello.get("state"))

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()

    def _call(self, command: str, retry: bool = True) -> Dict[str, Any]:
        """Send one command and read its answer; a dead or silent guardian is replaced (the new one drives the
        relay closed) and, with ``retry``, asked once more. OSError when no answer came."""
        with self._io:
            error: Exception = OSError("gate guardian stopped")
            for _ in range(2 if retry else 1):
                try:
                    if not self._alive():
                        if self._stop_requested():
                            raise OSError("the gate driver is closed")
                        self._replace()
                    assert self._proc is not None and self._proc.stdin is not None
                    self._proc.stdin.write(command.encode("utf-8") + b"\n")
                    return self._read(REPLY_TIMEOUT_S)
                except (OSError, ValueError, GateUnavailable) as exc:
                    error = exc
                    self._kill()
            raise OSError("gate guardian: {}".format(error))

    def _stop_requested(self) -> bool:
        stop = getattr(self, "_stop", None)
        return stop is not None and stop.is_set()

    def _replace(self) -> None:
        if self._proc is not None:
            log.error("gate %s: the guardian exited (status %s); starting a new one, which closes the relay first",
                      self.name, self._proc.returncode)
            self._kill()
        try:
            self._spawn()
        except GateUnavailable:
            self._respawn_at = time.monotonic() + RESPAWN_AFTER_FAILURE_S
            raise

    def _read(self, timeout: float) -> Dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError("no answer within {:.0f} s".format(timeout))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise OSError("the guardian exited")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer = json.loads(line.decode("utf-8"))
        if not isinstance(answer, dict):
            raise ValueError("not an answer: {!r}".format(line[:80]))
        return answer

    def _heartbeat(self) -> None:
        """Tell the guardian the kiosk is alive; a guardian that died is replaced (it closes the relay first)."""
        period = self.config.guardian_timeout_s / 3.0
        while not self._stop.wait(period):
            if not self._alive() and time.monotonic() < self._respawn_at:
                continue
            try:
                answer = self._call("ping", retry=False)
            except OSError as exc:
                if not self._stop.is_set():
                    log.error("gate %s: guardian heartbeat failed: %s", self.name, exc)
                continue
            self._note_wiegand(answer)
            if answer.get("fault") and self.fault is None:
                self.fault = str(answer["fault"])
                self.is_open = True
                log.error("gate %s: the guardian reports: %s", self.name, self.fault)


if __name__ == "__main__":
    sys.exit(main())
