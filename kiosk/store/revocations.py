"""The community's signed, versioned revocation list: what stays revoked when the database does not.

The database can be emptied or restored from an old backup; this list cannot roll back. It is a file
beside the database (``home.revocations``), signed with the community's private key so that every kiosk
holding ``community.pub`` can check it::

    {"format": "DABAI-REVOCATIONS1", "issued_at": 1790000000, "key_id": "0123456789abcdef",
     "passes": [3, 9], "residents": [2], "signature": "<Ed25519, base64url without padding>", "version": 7}

``version`` goes up by one with every list signed; ``passes`` (serials) and ``residents`` (ids) are
sorted, without repeats, each 1 … 2**32-1; ``key_id`` is the hex of the community key id that passes
carry. The signature covers ``DABAI-REVOCATIONS1\\n`` followed by the JSON of every other field, keys
sorted, no spaces (:func:`signed_bytes`). A pass on the list stays revoked forever; a resident leaves it
only by a reinstatement, which is itself a new signed version.

The highest version a kiosk ever accepted is remembered in ``home.state`` (``revocation-version.json``),
so an older list is refused. While the state is unsure (the list is missing although a version was
accepted before, its signature or form is bad, it is older than the remembered version)
:class:`RevocationWatch` says why and the verifier refuses every pass (``revocations_unsure``): the gate
stays closed rather than honour a pass that may have been revoked.

A fleet sync hands the same file to every kiosk: :func:`apply_list` checks its signature and version and
installs it atomically. Revoking and reinstating (CLI and operator screen) go through
:func:`revoke_resident`, :func:`revoke_pass` and :func:`reinstate_resident`, which change the database
and sign the next version with the private key at ``home.private_key``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, Iterator, Optional, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.config import Home, atomic_write
from kiosk.store.passes import KeyFileError, key_id, load_private_key, load_public_key
from kiosk.store.registry import MAX_ID, PassRecord, Registry, RegistryError, Resident
from kiosk.store.signing import check_signature, checked_key_id, encode_signature, strict_json

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: writers are not serialised
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

FORMAT = "DABAI-REVOCATIONS1"
FIELDS = ("format", "version", "issued_at", "key_id", "passes", "residents", "signature")
MAX_VERSION = 2**53 - 1  # exact in every JSON reader
MAX_LIST_BYTES = 32 << 20
STATE_FILE = "revocation-version.json"


class RevocationError(RegistryError):
    """The revocation list is unusable, older than one already accepted, or could not be updated."""


@dataclass(frozen=True)
class RevocationList:
    version: int  # 0: no list was ever accepted here
    issued_at: int
    key_id: bytes
    passes: FrozenSet[int]
    residents: FrozenSet[int]

    def unsigned_fields(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "issued_at": self.issued_at,
            "key_id": self.key_id.hex(),
            "passes": sorted(self.passes),
            "residents": sorted(self.residents),
        }


EMPTY = RevocationList(0, 0, b"", frozenset(), frozenset())


# ---- the signed file ------------------------------------------------------------------------


def signed_bytes(fields: Dict[str, Any]) -> bytes:
    """What the signature covers: the format tag, a newline, the fields (signature excluded) as compact sorted JSON."""
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return (FORMAT + "\n" + text).encode("ascii")


def sign_list(key: Ed25519PrivateKey, revocations: RevocationList) -> bytes:
    """The file's bytes: the list's fields and their signature."""
    fields = revocations.unsigned_fields()
    signature = key.sign(signed_bytes(fields))
    fields["signature"] = encode_signature(signature)
    return (json.dumps(fields, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise RevocationError("{} must be a whole number between {} and {}".format(what, low, high))
    return value


def _ids(value: Any, what: str) -> FrozenSet[int]:
    if not isinstance(value, list):
        raise RevocationError("{} must be a list".format(what))
    for item in value:
        _whole(item, what, 1, MAX_ID)
    if any(a >= b for a, b in zip(value, value[1:])):
        raise RevocationError("{} must be sorted, without repeats".format(what))
    return frozenset(value)


def parse_list(data: bytes, public_key: Ed25519PublicKey) -> RevocationList:
    """The list in ``data``, checked field by field and against the community's key; RevocationError says
    what is wrong."""
    if len(data) > MAX_LIST_BYTES:
        raise RevocationError("the revocation list is {} bytes, more than {}".format(len(data), MAX_LIST_BYTES))
    try:
        fields = strict_json(data)
    except ValueError as exc:
        raise RevocationError("the revocation list is not valid JSON: {}".format(exc)) from None
    if not isinstance(fields, dict) or sorted(fields) != sorted(FIELDS):
        raise RevocationError("the revocation list must have exactly the fields {}".format(", ".join(FIELDS)))
    if fields["format"] != FORMAT:
        raise RevocationError("the revocation list's format is {!r}, not {!r}".format(fields["format"], FORMAT))
    version = _whole(fields["version"], "version", 1, MAX_VERSION)
    issued_at = _whole(fields["issued_at"], "issued_at", 0, MAX_ID)
    kid = checked_key_id(fields["key_id"], public_key, "the revocation list", RevocationError)
    passes = _ids(fields["passes"], "passes")
    residents = _ids(fields["residents"], "residents")
    check_signature(fields["signature"], signed_bytes(fields), public_key, "the revocation list", RevocationError)
    return RevocationList(version, issued_at, kid, passes, residents)


# ---- the highest version accepted -----------------------------------------------------------


def state_path(home: Home) -> Path:
    return home.state / STATE_FILE


def seen_version(home: Home) -> int:
    """The highest list version this home ever accepted (0: none); RevocationError when the record is unreadable."""
    path = state_path(home)
    try:
        version = json.loads(path.read_text(encoding="utf-8"))["version"]
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RevocationError("{} is unreadable ({}); the highest revocation-list version is unknown".format(
            path, exc)) from None
    try:
        return _whole(version, "version", 0, MAX_VERSION)
    except RevocationError as exc:
        raise RevocationError("{}: {}".format(path, exc)) from None


def _remember(home: Home, version: int) -> None:
    atomic_write(state_path(home), (json.dumps({"version": version}) + "\n").encode("ascii"))


@contextlib.contextmanager
def list_lock(home: Home) -> Iterator[None]:
    """One writer of the list at a time (the CLI, the operator screen and a key rotation may all sign one)."""
    home.state.mkdir(parents=True, exist_ok=True)
    with open(str(home.state / "revocations.lock"), "a") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def _read(path: Path) -> Optional[bytes]:
    try:
        with open(str(path), "rb") as fh:
            return fh.read(MAX_LIST_BYTES + 1)
    except FileNotFoundError:
        return None


def load_list(home: Home, public_key: Ed25519PublicKey) -> RevocationList:
    """The installed list, checked (EMPTY when none was ever accepted here); remembers a newer version.
    RevocationError when the revocation state is unsure."""
    seen = seen_version(home)
    data = _read(home.revocations)
    if data is None:
        if seen > 0:
            raise RevocationError("the revocation list {} is missing, but version {} was accepted here before".format(
                home.revocations, seen))
        return EMPTY
    revocations = parse_list(data, public_key)
    if revocations.version < seen:
        raise RevocationError("the revocation list is version {}, older than version {} accepted here before "
                              "(restored from a backup?)".format(revocations.version, seen))
    if revocations.version > seen:
        try:
            _remember(home, revocations.version)
        except OSError as exc:  # the list itself is sound; a running watch also remembers it in memory
            log.warning("cannot record revocation-list version %d in %s: %s", revocations.version, home.state, exc)
    return revocations


def apply_list(home: Home, data: bytes, public_key: Optional[Ed25519PublicKey] = None) -> RevocationList:
    """Install a signed list handed over from elsewhere (the issuing machine, a fleet sync) after checking
    its signature and that it is not older than any list accepted here; the same version again is taken only
    if it is the same list (that is how a lost file is restored). RevocationError when refused."""
    public_key = public_key or load_public_key(home.public_key)
    with list_lock(home):
        return apply_list_locked(home, data, public_key)


def apply_list_locked(home: Home, data: bytes, public_key: Ed25519PublicKey) -> RevocationList:
    """:func:`apply_list` for a caller that holds :func:`list_lock` already (a key rotation)."""
    new = parse_list(data, public_key)
    seen = seen_version(home)
    if new.version < seen:
        raise RevocationError("refused: version {} is older than version {} accepted here before".format(
            new.version, seen))
    if new.version == seen:
        try:
            installed: Optional[RevocationList] = load_list(home, public_key)
        except RevocationError:
            installed = None  # missing or damaged: the same version may replace it
        if installed is not None and installed != new:
            raise RevocationError("refused: a different list with version {} was accepted here before".format(
                new.version))
    _install(home, data, new.version)
    return new


def _install(home: Home, data: bytes, version: int) -> None:
    atomic_write(home.revocations, data)
    _remember(home, version)


# ---- what the verifier consults -------------------------------------------------------------


def _stamp(path: Path) -> Any:
    try:
        st = os.stat(str(path))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return str(exc)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class RevocationWatch:
    """The list in force for a running kiosk: re-read when the file or the state record changes (a CLI
    revoke or a sync in another process), so a check costs two ``stat`` calls."""

    def __init__(self, home: Home, public_key: Any) -> None:
        self.home = home
        self.public_key = public_key  # an Ed25519PublicKey, or a KeyRing (kiosk.store.keyring): the key may rotate
        self.problem: Optional[str] = None  # why the state is unsure, or None
        self._highest = 0  # also remembered here, in case the state record cannot be written
        self._stamp: Any = ()
        self._list: Optional[RevocationList] = None

    def current(self) -> Optional[RevocationList]:
        """The list in force (EMPTY when none was ever accepted), or None while the state is unsure."""
        stamp = (_stamp(self.home.revocations), _stamp(state_path(self.home)), key_id(self._key()))
        if stamp != self._stamp:
            self._stamp = stamp
            self._load()
        return self._list

    def _key(self) -> Ed25519PublicKey:
        current = getattr(self.public_key, "current", None)
        return current() if current is not None else self.public_key

    def _load(self) -> None:
        try:
            revocations = load_list(self.home, self._key())
            if revocations.version < self._highest:
                raise RevocationError("the revocation list is version {}, older than version {} in use a moment ago"
                                      .format(revocations.version, self._highest))
        except (RevocationError, OSError) as exc:
            if str(exc) != self.problem:
                log.error("revocation state unsure, every pass is refused: %s", exc)
            self._list, self.problem = None, str(exc)
            return
        if self.problem is not None:
            log.warning("revocation list version %d is in force again", revocations.version)
        self._highest = revocations.version
        self._list, self.problem = revocations, None


# ---- revoking and reinstating ---------------------------------------------------------------


def update_list(
    home: Home,
    registry: Registry,
    revoke_passes: Iterable[int] = (),
    revoke_residents: Iterable[int] = (),
    reinstate_residents: Iterable[int] = (),
    now: Optional[float] = None,
) -> Optional[RevocationList]:
    """Sign and install the next version: the current list, plus what the database has revoked and the
    given changes. Nothing is signed when nothing changes. None when this home has no community key at all
    (no pass was ever issued here). KeyFileError when a change needs the private key and it is not here;
    RevocationError when the current list is unsure (a new version would silently drop what it holds)."""
    if not home.private_key.exists() and not home.public_key.exists():
        return None
    public = load_public_key(home.public_key) if home.public_key.exists() else None
    with list_lock(home):
        current = load_list(home, public or load_private_key(home.private_key).public_key())
        passes = current.passes | set(revoke_passes) | set(registry.revoked_serials())
        residents = current.residents | set(revoke_residents) | set(registry.revoked_ids())
        residents = residents - set(reinstate_residents)
        passes = frozenset(s for s in passes if 1 <= s <= MAX_ID)
        residents = frozenset(r for r in residents if 1 <= r <= MAX_ID)
        if passes == current.passes and residents == current.residents:
            return current
        key = load_private_key(home.private_key)
        if public is not None and key_id(public) != key_id(key.public_key()):
            raise RevocationError("{} and {} are not one key pair".format(home.private_key, home.public_key))
        issued = int(time.time() if now is None else now)
        new = RevocationList(current.version + 1, issued, key_id(key.public_key()), passes, residents)
        _install(home, sign_list(key, new), new.version)
    return new


def _publish(home: Home, registry: Registry, done: str, **changes: Iterable[int]) -> Optional[RevocationList]:
    try:
        return update_list(home, registry, **changes)
    except (RevocationError, KeyFileError, OSError) as exc:
        raise RevocationError("{} in this kiosk's database, but the signed revocation list was not updated: {}"
                              .format(done, exc)) from None


def revoke_resident(home: Home, registry: Registry, ref: str) -> Tuple[Resident, Optional[RevocationList]]:
    """Revoke a resident (id or unique name) in the database at once, then on a new signed list version."""
    resident = registry.revoke(ref)
    done = "resident {} ({}) is revoked".format(resident.id, resident.name)
    return resident, _publish(home, registry, done, revoke_residents=[resident.id])


def revoke_pass(home: Home, registry: Registry, serial: int) -> Tuple[PassRecord, Optional[RevocationList]]:
    """Revoke a pass in the database at once, then on a new signed list version (for ever)."""
    record = registry.revoke_pass(serial)
    done = "pass {} is revoked".format(record.serial)
    return record, _publish(home, registry, done, revoke_passes=[record.serial])


def reinstate_resident(home: Home, registry: Registry, ref: str) -> Tuple[Resident, Optional[RevocationList]]:
    """Reinstate a resident: first a new signed list version without them (when they are on it), then the
    database. Their revoked passes stay revoked."""
    resident = registry.resolve(ref)
    try:
        revocations = update_list(home, registry, reinstate_residents=[resident.id])
    except (RevocationError, KeyFileError, OSError) as exc:
        raise RevocationError("resident {} ({}) was not reinstated: {}".format(resident.id, resident.name, exc)) from None
    return registry.reinstate(str(resident.id)), revocations


def next_free_ids(home: Home) -> Tuple[int, int]:
    """(lowest resident id, lowest serial) a new resident or pass may take without colliding with one on the
    installed list, which outlives the database. (1, 1) when there is no usable list."""
    try:
        revocations = load_list(home, load_public_key(home.public_key))
    except (RevocationError, KeyFileError, OSError):
        return 1, 1
    return max(revocations.residents, default=0) + 1, max(revocations.passes, default=0) + 1
