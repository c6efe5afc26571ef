"""The operator PIN: a slow salted hash, a lockout kept apart from it, and a one-time setup code.

Three small JSON files, each mode 0600 and written atomically:

* ``operator_pin.json`` in the data home: the hash parameters, the salt, the hash and
  ``"lockout_file": true``, which records that this PIN's lockout lives in the file below.
* ``state/operator_lockout.json`` (``Home.state``): the wrong tries in a row (``failures``), the
  lockouts in a row (``lockouts``) and ``locked_until`` (wall-clock seconds, or null).
* ``state/operator_setup.json``: the hash of the pending setup code and when it expires.

The lockout: after :data:`MAX_TRIES` wrong PINs (or setup codes) in a row the screen is locked for
:data:`LOCK_S` seconds, twice as long on each further lockout (at most :data:`MAX_LOCK_S`); a right
PIN (or setup code) resets both counts. The count lives apart from the PIN so that editing one file does not reset
the other:

* Setting, replacing or editing the PIN file leaves the count and the lock as they were.
  ``dabai-kiosk operator set-pin`` clears them on purpose (whoever has a shell on the box may also run
  ``reset-lock``); :meth:`PinStore.set_pin` itself never does.
* Deleting the lockout file does not unlock: when the PIN file says a lockout file exists and it is
  missing, the screen stays locked until ``dabai-kiosk operator reset-lock`` writes a fresh one. A
  damaged lockout file locks the same way, PIN file or not.
* A PIN file of the first format, which kept the counts itself, is taken over: its counts seed the
  lockout file, then the PIN file is rewritten with the marker.

Choosing the first PIN at the kiosk needs a setup code: while no PIN is set, opening the PIN dialog
makes a random :data:`SETUP_DIGITS`-digit code, valid :data:`SETUP_VALID_S` seconds, prints it on the
console (the journal under systemd; never on the screen) and keeps only its hash. A right code is used
up and lets the person choose the PIN; a wrong one counts toward the lock like a wrong PIN; a new code
replaces the old one. Without it, or ``dabai-kiosk operator set-pin``, there is no operator screen.

What the files cannot defend against: someone who can write the PIN file can put their own hash there,
and someone who deletes both the PIN and the lockout file is back at first setup, which still needs the
code from the console. The files' owner and mode are the protection against both.

Nothing here imports Qt: ``dabai-kiosk operator set-pin`` uses it on a machine without a display.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from kiosk.config import Home, atomic_write

FILE_NAME = "operator_pin.json"  # in the data home
LOCKOUT_NAME = "operator_lockout.json"  # in home.state
SETUP_NAME = "operator_setup.json"  # in home.state
MAX_TRIES = 5
LOCK_S = 300.0  # first lockout: 5 minutes
MAX_LOCK_S = 24 * 3600.0
SETUP_DIGITS = 8
SETUP_VALID_S = 900.0  # a setup code works for 15 minutes
PIN_RULE = "the PIN must be 4 to 8 digits (0-9) / 密码须为 4–8 位数字"

_SCRYPT = {"kdf": "scrypt", "n": 2 ** 15, "r": 8, "p": 1}
_PBKDF2 = {"kdf": "pbkdf2-sha256", "iterations": 240000}
_CLEAR: Dict[str, Any] = {"failures": 0, "lockouts": 0, "locked_until": None}  # the lockout file's fields


@dataclass(frozen=True)
class PinResult:
    """The answer to one PIN (or setup code) attempt. ``locked_until`` is a wall-clock time (``time.time()``)
    while locked; ``tries_left`` counts the wrong tries left before the next lockout; ``error`` says why
    nothing can be checked (an unreadable PIN file, a lost lockout file, no valid setup code)."""

    ok: bool
    locked_until: Optional[float]
    tries_left: int
    error: Optional[str] = None


def _derive(secret: str, salt: bytes, params: Dict[str, Any]) -> bytes:
    if params["kdf"] == "scrypt":
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        return hashlib.scrypt(secret.encode("ascii"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32)
    if params["kdf"] == "pbkdf2-sha256":
        return hashlib.pbkdf2_hmac("sha256", secret.encode("ascii"), salt, int(params["iterations"]), dklen=32)
    raise ValueError("unknown PIN hash {!r}".format(params["kdf"]))


def _kdf_params() -> Dict[str, Any]:
    """scrypt where this Python's OpenSSL has it, else PBKDF2-HMAC-SHA256."""
    try:
        _derive("0000", b"0" * 16, dict(_SCRYPT, n=2))
    except (AttributeError, ValueError):
        return dict(_PBKDF2)
    return dict(_SCRYPT)


def _hashed(secret: str) -> Dict[str, Any]:
    """A new salted hash of ``secret`` with its parameters, as the PIN and setup files store it."""
    params = _kdf_params()
    salt = os.urandom(16)
    return dict(params, salt=salt.hex(), hash=_derive(secret, salt, params).hex())


def _matches(secret: Any, record: Dict[str, Any]) -> bool:
    """Whether ``secret`` is the one hashed in ``record``; KeyError, TypeError or ValueError for a broken record."""
    expected = bytes.fromhex(str(record["hash"]))
    return isinstance(secret, str) and secret.isascii() and hmac.compare_digest(
        _derive(secret, bytes.fromhex(str(record["salt"])), record), expected)


def _read_json(path: Path) -> Any:
    """The file's JSON; None when there is no file; ValueError when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError("cannot read {}: {}".format(path, exc)) from None


def _write_json(path: Path, data: Dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=1).encode("utf-8"), mode=0o600)


def _is_lockout(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    counts = [data.get("failures"), data.get("lockouts")]
    until = data.get("locked_until")
    return all(type(n) is int and n >= 0 for n in counts) and (until is None or isinstance(until, (int, float)))


def validate_pin(pin: Any) -> str:
    """The PIN as text, or ValueError saying what a PIN must be."""
    if not isinstance(pin, str) or not re.fullmatch(r"[0-9]{4,8}", pin):
        raise ValueError(PIN_RULE)
    return pin


class PinStore:
    """The operator PIN of one kiosk. ``clock`` (wall time) is replaceable for tests."""

    def __init__(self, path: Path, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.lockout_path = Path(state_dir) / LOCKOUT_NAME
        self.setup_path = Path(state_dir) / SETUP_NAME
        self.clock = clock
        self._lock = threading.Lock()

    @classmethod
    def in_home(cls, home: Home, clock: Callable[[], float] = time.time) -> "PinStore":
        return cls(home.root / FILE_NAME, home.state, clock)

    # reading and writing (callers hold self._lock)

    def _read(self) -> Optional[Dict[str, Any]]:
        """The PIN record; None when no PIN is set; ValueError when the file is unusable."""
        data = _read_json(self.path)
        if data is not None and (not isinstance(data, dict) or not all(k in data for k in ("kdf", "salt", "hash"))):
            raise ValueError("{} is not an operator PIN file".format(self.path))
        return data

    def _lockout(self, pin: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """The lockout state; ValueError when it is lost (missing although the PIN file says it exists) or damaged."""
        data = _read_json(self.lockout_path)  # ValueError: unreadable
        if data is None:
            if pin is not None and pin.get("lockout_file"):
                raise ValueError("the lockout record {} is missing".format(self.lockout_path))
            data = {key: (pin or {}).get(key, value) for key, value in _CLEAR.items()}  # none yet, or the first format
        if not _is_lockout(data):
            raise ValueError("{} is not an operator lockout record".format(self.lockout_path))
        return data

    def _load(self) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
        """The PIN record (None: no PIN) and the lockout state; ValueError saying how to fix what is unusable."""
        try:
            pin = self._read()
        except ValueError as exc:
            raise ValueError("{}: reset it with `dabai-kiosk operator set-pin`".format(exc)) from None
        try:
            return pin, self._lockout(pin)
        except ValueError as exc:
            raise ValueError("{}: the operator screen stays locked; run `dabai-kiosk operator reset-lock`".format(exc)) from None

    def _save_lockout(self, state: Dict[str, Any], pin: Optional[Dict[str, Any]]) -> None:
        _write_json(self.lockout_path, state)
        if pin is not None and not pin.get("lockout_file"):  # take over a PIN file of the first format
            record = {key: value for key, value in pin.items() if key not in _CLEAR}
            _write_json(self.path, dict(record, lockout_file=True))

    def _count(self, right: bool, state: Dict[str, Any], pin: Optional[Dict[str, Any]], now: float) -> PinResult:
        """Record a right or wrong try (PIN or setup code) and answer it."""
        if right:
            if state != _CLEAR or (pin is not None and not pin.get("lockout_file")):
                self._save_lockout(dict(_CLEAR), pin)
            return PinResult(True, None, MAX_TRIES)
        failures = state["failures"] + 1
        if failures >= MAX_TRIES:
            lockouts = state["lockouts"] + 1
            until = now + self._lock_length(lockouts)
            self._save_lockout(dict(failures=0, lockouts=lockouts, locked_until=until), pin)
            return PinResult(False, until, 0)
        self._save_lockout(dict(failures=failures, lockouts=state["lockouts"], locked_until=None), pin)
        return PinResult(False, None, MAX_TRIES - failures)

    def _discard_setup_code(self) -> None:
        try:
            self.setup_path.unlink()
        except FileNotFoundError:
            pass

    # the public interface

    def is_set(self) -> bool:
        """True when a PIN file exists (an unreadable one too: it must be reset, never silently replaced)."""
        return self.path.exists()

    def set_pin(self, pin: str) -> None:
        """Store a new PIN (4–8 digits, else ValueError) and drop any pending setup code. The wrong-try count and
        the lock stay as they are (:meth:`reset_lock` clears them)."""
        validate_pin(pin)
        record = dict(_hashed(pin), lockout_file=True)
        with self._lock:
            if not self.lockout_path.exists():
                try:
                    old: Optional[Dict[str, Any]] = self._read()
                except ValueError:
                    old = None  # an unusable PIN file being replaced
                try:
                    _write_json(self.lockout_path, self._lockout(old))
                except ValueError:
                    pass  # lost although the old PIN file recorded it: locked until reset-lock, new PIN or not
            _write_json(self.path, record)
            self._discard_setup_code()

    def reset_lock(self) -> None:
        """Clear the wrong-try count and the lock (``dabai-kiosk operator reset-lock``), writing a fresh lockout file."""
        with self._lock:
            try:
                pin = self._read()
            except ValueError:
                pin = None
            self._save_lockout(dict(_CLEAR), pin)

    def status(self, now: Optional[float] = None) -> PinResult:
        """Whether the screen is locked now and how many tries are left, without trying a PIN."""
        now = self.clock() if now is None else now
        with self._lock:
            try:
                _, state = self._load()
            except ValueError as exc:
                return PinResult(False, None, 0, str(exc))
            until = self._locked_until(state, now)
            return PinResult(False, until, 0 if until else MAX_TRIES - state["failures"])

    def check(self, pin: str, now: Optional[float] = None) -> PinResult:
        """Try a PIN. While locked, nothing is tried. The count and the lock are saved before returning."""
        now = self.clock() if now is None else now
        with self._lock:
            try:
                record, state = self._load()
            except ValueError as exc:
                return PinResult(False, None, 0, str(exc))
            if record is None:
                return PinResult(False, None, MAX_TRIES, "no operator PIN is set yet")
            until = self._locked_until(state, now)
            if until is not None:
                return PinResult(False, until, 0)
            try:
                right = _matches(pin, record)
            except (KeyError, TypeError, ValueError) as exc:
                return PinResult(False, None, 0, "unusable PIN file {}: {}".format(self.path, exc))
            return self._count(right, state, record, now)

    # the setup code

    def new_setup_code(self, now: Optional[float] = None) -> Tuple[str, float]:
        """A fresh one-time setup code and when it expires; only its hash is kept, and it replaces any earlier
        code. ValueError when a PIN is set already."""
        now = self.clock() if now is None else now
        code = "".join(secrets.choice("0123456789") for _ in range(SETUP_DIGITS))
        expires = now + SETUP_VALID_S
        record = dict(_hashed(code), expires=expires)
        with self._lock:
            if self.is_set():
                raise ValueError("an operator PIN is set already")
            _write_json(self.setup_path, record)
        return code, expires

    def use_setup_code(self, code: str, now: Optional[float] = None) -> PinResult:
        """Try the setup code. A right one is used up and lets the caller :meth:`set_pin`; a wrong one counts toward
        the lock like a wrong PIN. No code, an expired one or a PIN set meanwhile is an ``error``, not a try."""
        now = self.clock() if now is None else now
        with self._lock:
            try:
                pin, state = self._load()
            except ValueError as exc:
                return PinResult(False, None, 0, str(exc))
            if pin is not None:
                return PinResult(False, None, 0, "an operator PIN is set already")
            until = self._locked_until(state, now)
            if until is not None:
                return PinResult(False, until, 0)
            tries = MAX_TRIES - state["failures"]
            try:
                setup = _read_json(self.setup_path)
            except ValueError:
                setup = None
            if not isinstance(setup, dict):
                return PinResult(False, None, tries, "no setup code is waiting: open this again for a new one")
            expires = setup.get("expires")
            # A wall clock set back must not keep a code alive longer than SETUP_VALID_S either.
            if not isinstance(expires, (int, float)) or not 0 < expires - now <= SETUP_VALID_S:
                self._discard_setup_code()
                return PinResult(False, None, tries, "the setup code has expired: open this again for a new one")
            try:
                right = _matches(code, setup)
            except (KeyError, TypeError, ValueError) as exc:
                self._discard_setup_code()
                return PinResult(False, None, tries, "unusable setup code file {}: {}".format(self.setup_path, exc))
            if right:
                self._discard_setup_code()
            return self._count(right, state, None, now)

    # the lock

    @staticmethod
    def _lock_length(lockouts: int) -> float:
        return min(MAX_LOCK_S, LOCK_S * 2 ** max(0, lockouts - 1))

    def _locked_until(self, state: Dict[str, Any], now: float) -> Optional[float]:
        until = state.get("locked_until")
        if not isinstance(until, (int, float)) or now >= until:
            return None
        # A wall clock set back (an offline box without a time source) must not lock the screen for years.
        return min(float(until), now + self._lock_length(state["lockouts"]))
