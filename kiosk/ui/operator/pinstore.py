"""The operator PIN: a slow salted hash in a small JSON file, with a lockout that survives restarts.

The file (``operator_pin.json`` in the data home, mode 0600, written atomically) holds the hash
parameters, the salt, the hash, the count of wrong tries and the lock. After :data:`MAX_TRIES`
wrong PINs in a row the screen is locked for :data:`LOCK_S` seconds, twice as long on each
further lockout (at most :data:`MAX_LOCK_S`); a right PIN resets both. Nothing here imports Qt:
``dabai-kiosk operator set-pin`` uses it on a machine without a display.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from kiosk.config import Home, atomic_write

FILE_NAME = "operator_pin.json"
MAX_TRIES = 5
LOCK_S = 300.0  # first lockout: 5 minutes
MAX_LOCK_S = 24 * 3600.0
PIN_RULE = "the PIN must be 4 to 8 digits (0-9) / 密码须为 4–8 位数字"

_SCRYPT = {"kdf": "scrypt", "n": 2 ** 15, "r": 8, "p": 1}
_PBKDF2 = {"kdf": "pbkdf2-sha256", "iterations": 240000}


@dataclass(frozen=True)
class PinResult:
    """The answer to one PIN attempt. ``locked_until`` is a wall-clock time (``time.time()``) while
    locked; ``tries_left`` counts the wrong tries left before the next lockout; ``error`` says why a
    PIN cannot be checked at all (an unreadable PIN file)."""

    ok: bool
    locked_until: Optional[float]
    tries_left: int
    error: Optional[str] = None


def _derive(pin: str, salt: bytes, params: Dict[str, Any]) -> bytes:
    if params["kdf"] == "scrypt":
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        return hashlib.scrypt(pin.encode("ascii"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32)
    if params["kdf"] == "pbkdf2-sha256":
        return hashlib.pbkdf2_hmac("sha256", pin.encode("ascii"), salt, int(params["iterations"]), dklen=32)
    raise ValueError("unknown PIN hash {!r}".format(params["kdf"]))


def _kdf_params() -> Dict[str, Any]:
    """scrypt where this Python's OpenSSL has it, else PBKDF2-HMAC-SHA256."""
    try:
        _derive("0000", b"0" * 16, dict(_SCRYPT, n=2))
    except (AttributeError, ValueError):
        return dict(_PBKDF2)
    return dict(_SCRYPT)


def validate_pin(pin: Any) -> str:
    """The PIN as text, or ValueError saying what a PIN must be."""
    if not isinstance(pin, str) or not re.fullmatch(r"[0-9]{4,8}", pin):
        raise ValueError(PIN_RULE)
    return pin


class PinStore:
    """The operator PIN of one kiosk. ``clock`` (wall time) is replaceable for tests."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()

    @classmethod
    def in_home(cls, home: Home, clock: Callable[[], float] = time.time) -> "PinStore":
        return cls(home.root / FILE_NAME, clock)

    # reading and writing

    def _read(self) -> Optional[Dict[str, Any]]:
        """The stored state; None when no PIN is set; ValueError when the file is unusable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ValueError("cannot read {}: {}".format(self.path, exc)) from None
        if not isinstance(data, dict) or not all(k in data for k in ("kdf", "salt", "hash")):
            raise ValueError("{} is not an operator PIN file".format(self.path))
        return data

    def _write(self, data: Dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(data, indent=1).encode("utf-8"), mode=0o600)

    # the public interface

    def is_set(self) -> bool:
        """True when a PIN file exists (an unreadable one too: it must be reset, never silently replaced)."""
        return self.path.exists()

    def set_pin(self, pin: str) -> None:
        """Store a new PIN (4–8 digits, else ValueError) and clear the wrong-try count and the lock."""
        validate_pin(pin)
        params = _kdf_params()
        salt = os.urandom(16)
        digest = _derive(pin, salt, params)
        with self._lock:
            self._write(dict(params, salt=salt.hex(), hash=digest.hex(), failures=0, lockouts=0, locked_until=None))

    def reset_lock(self) -> bool:
        """Clear the wrong-try count and the lock (``dabai-kiosk operator reset-lock``); False when no PIN is set."""
        with self._lock:
            data = self._read()
            if data is None:
                return False
            data.update(failures=0, lockouts=0, locked_until=None)
            self._write(data)
            return True

    def status(self, now: Optional[float] = None) -> PinResult:
        """Whether the screen is locked now and how many tries are left, without trying a PIN."""
        now = self.clock() if now is None else now
        with self._lock:
            try:
                data = self._read()
            except ValueError as exc:
                return PinResult(False, None, 0, str(exc))
            if data is None:
                return PinResult(False, None, MAX_TRIES)
            until = self._locked_until(data, now)
            return PinResult(False, until, 0 if until else MAX_TRIES - int(data.get("failures", 0)))

    def check(self, pin: str, now: Optional[float] = None) -> PinResult:
        """Try a PIN. While locked, nothing is tried. The count and the lock are saved before returning."""
        now = self.clock() if now is None else now
        with self._lock:
            try:
                data = self._read()
            except ValueError as exc:
                return PinResult(False, None, 0, "{}: reset it with `dabai-kiosk operator set-pin`".format(exc))
            if data is None:
                return PinResult(False, None, MAX_TRIES, "no operator PIN is set yet")
            until = self._locked_until(data, now)
            if until is not None:
                return PinResult(False, until, 0)
            try:
                expected = bytes.fromhex(str(data["hash"]))
                right = isinstance(pin, str) and pin.isascii() and hmac.compare_digest(
                    _derive(pin, bytes.fromhex(str(data["salt"])), data), expected)
            except (KeyError, TypeError, ValueError) as exc:
                return PinResult(False, None, 0, "unusable PIN file {}: {}".format(self.path, exc))
            if right:
                if data.get("failures") or data.get("locked_until") or data.get("lockouts"):
                    data.update(failures=0, lockouts=0, locked_until=None)
                    self._write(data)
                return PinResult(True, None, MAX_TRIES)
            failures = int(data.get("failures", 0)) + 1
            if failures >= MAX_TRIES:
                lockouts = int(data.get("lockouts", 0)) + 1
                until = now + self._lock_length(lockouts)
                data.update(failures=0, lockouts=lockouts, locked_until=until)
                self._write(data)
                return PinResult(False, until, 0)
            data.update(failures=failures, locked_until=None)
            self._write(data)
            return PinResult(False, None, MAX_TRIES - failures)

    # the lock

    @staticmethod
    def _lock_length(lockouts: int) -> float:
        return min(MAX_LOCK_S, LOCK_S * 2 ** max(0, lockouts - 1))

    def _locked_until(self, data: Dict[str, Any], now: float) -> Optional[float]:
        until = data.get("locked_until")
        if not isinstance(until, (int, float)) or now >= until:
            return None
        # A wall clock set back (an offline box without a time source) must not lock the screen for years.
        return min(float(until), now + self._lock_length(int(data.get("lockouts", 1))))
