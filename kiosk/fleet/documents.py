"""The office's signed, versioned documents for every kiosk: residents and passes, the gate policy, the community key.

The revocation list keeps its own signed file (:mod:`kiosk.store.revocations`). Everything else the office publishes
travels in one envelope, signed with the community's private key like the list::

    {"format": "DABAI-FLEET1", "kind": "registry", "version": 12, "issued_at": 1790000000,
     "key_id": "0123456789abcdef", "body": {...}, "signature": "<Ed25519, base64url without padding>"}

Kinds, each with its own version sequence:

* ``registry``: a snapshot of every resident and pass (``body``: ``residents``, ``passes``, ``digest``);
* ``registry-change``: the rows that changed since version ``base`` (``body``: ``base``, ``residents``, ``passes``,
  ``deleted``, ``digest`` of the whole registry after it); it shares the ``registry`` sequence;
* ``policy``: the ``[policy]`` section every gate of the community decides by;
* ``key``: the community key's rotation, signed with the key it replaces (``body``: ``public_key``, the new key;
  ``old_passes_until``, until when passes signed with the old key are honoured; ``revocations``, the revocation list
  signed with the new key, installed together with it).

A kiosk (:func:`apply_document`) checks the signature against the key it holds and refuses a version older than one
it accepted (a replay), an unsigned or forged document, and a different document under an accepted version. What it
accepts it applies atomically: the registry in one SQLite transaction whose result must hash to the office's
``digest``, the policy and the key as files replaced whole. The highest version of each kind it accepted is kept in
``state/fleet-versions.json``, beside the revocation list's, and outlives the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.config import ConfigError, Home, atomic_write, config_from_dict, config_to_dict, load_config, save_config
from kiosk.store.db import Database
from kiosk.store.passes import key_id
from kiosk.store.signing import check_signature, checked_key_id, encode_signature, strict_json

FORMAT = "DABAI-FLEET1"
FIELDS = ("format", "kind", "version", "issued_at", "key_id", "body", "signature")
KINDS = ("registry", "registry-change", "policy", "key")
SEQUENCE = {"registry": "registry", "registry-change": "registry", "policy": "policy", "key": "key"}
MAX_VERSION = 2**53 - 1
MAX_BYTES = 64 << 20
VERSIONS_FILE = "fleet-versions.json"


class DocumentError(ValueError):
    """A document was refused: unsigned, forged, malformed, older than one accepted, or not applicable here."""


class Unapplied(DocumentError):
    """A genuine document this kiosk could not apply here and now (a full disk, a database in use): nothing was
    changed, and it is tried again."""


class Stale(DocumentError):
    """Refused because this kiosk already holds that version or a newer one (a replay, or a change it missed the
    base of): harmless, the newest snapshot brings it up to date."""


@dataclass(frozen=True)
class Document:
    kind: str
    version: int
    issued_at: int
    key_id: bytes
    body: Dict[str, Any]

    @property
    def sequence(self) -> str:
        return SEQUENCE[self.kind]


# ---- the envelope ---------------------------------------------------------------------------


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def signed_bytes(fields: Dict[str, Any]) -> bytes:
    return FORMAT.encode("ascii") + b"\n" + _canonical({k: v for k, v in fields.items() if k != "signature"})


def sign_document(key: Ed25519PrivateKey, kind: str, version: int, body: Dict[str, Any],
                  issued_at: Optional[float] = None) -> bytes:
    """The document's bytes: its fields and their signature with the community's private key."""
    if kind not in KINDS:
        raise ValueError("unknown document kind {!r}".format(kind))
    fields = {"format": FORMAT, "kind": kind, "version": int(version),
              "issued_at": int(time.time() if issued_at is None else issued_at),
              "key_id": key_id(key.public_key()).hex(), "body": body}
    fields["signature"] = encode_signature(key.sign(signed_bytes(fields)))
    return _canonical(fields) + b"\n"


def _whole(value: Any, what: str, low: int = 0, high: int = MAX_VERSION) -> int:
    if type(value) is not int or not low <= value <= high:
        raise DocumentError("{} must be a whole number between {} and {}".format(what, low, high))
    return value


def parse_document(data: bytes, public_key: Ed25519PublicKey) -> Document:
    """The document in ``data``, checked against the community's key; DocumentError says what is wrong."""
    if len(data) > MAX_BYTES:
        raise DocumentError("the document is {} bytes, more than {}".format(len(data), MAX_BYTES))
    try:
        fields = strict_json(data)
    except ValueError as exc:
        raise DocumentError("not a signed document (not valid JSON: {})".format(exc)) from None
    if not isinstance(fields, dict) or sorted(fields) != sorted(FIELDS) or fields.get("format") != FORMAT:
        raise DocumentError("not a signed document: it must be {} with exactly the fields {}".format(
            FORMAT, ", ".join(FIELDS)))
    kind = fields["kind"]
    if kind not in KINDS:
        raise DocumentError("unknown document kind {!r}".format(kind))
    version = _whole(fields["version"], "version", 1)
    issued_at = _whole(fields["issued_at"], "issued_at")
    kid = checked_key_id(fields["key_id"], public_key, "the {} document".format(kind), DocumentError)
    if not isinstance(fields["body"], dict):
        raise DocumentError("body must be an object")
    check_signature(fields["signature"], signed_bytes(fields), public_key, "the {} document".format(kind),
                    DocumentError)
    return Document(kind, version, issued_at, kid, fields["body"])


# ---- versions held --------------------------------------------------------------------------


def held_versions(home: Home) -> Dict[str, Any]:
    """What this kiosk holds: ``{"registry": version, "registry_digest": ..., "policy": ..., "key": ...}``."""
    try:
        data = json.loads((home.state / VERSIONS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DocumentError("{} is unreadable ({}): the versions held are unknown".format(
            home.state / VERSIONS_FILE, exc)) from None
    return data if isinstance(data, dict) else {}


def _remember(home: Home, **values: Any) -> None:
    held = held_versions(home)
    held.update(values)
    atomic_write(home.state / VERSIONS_FILE, _canonical(held) + b"\n")


# ---- the registry ---------------------------------------------------------------------------

RESIDENT_COLUMNS = ("id", "name", "unit", "status", "created_at", "archived_at")
PASS_COLUMNS = ("serial", "resident_id", "issued_at", "expires_at", "revoked_at")


def registry_rows(db: Database) -> Tuple[List[List[Any]], List[List[Any]]]:
    residents = [list(r) for r in db.query("SELECT {} FROM residents ORDER BY id".format(", ".join(RESIDENT_COLUMNS)))]
    passes = [list(r) for r in db.query("SELECT {} FROM passes ORDER BY serial".format(", ".join(PASS_COLUMNS)))]
    return residents, passes


def registry_digest(residents: Sequence[Sequence[Any]], passes: Sequence[Sequence[Any]]) -> str:
    """The same on the office and on every kiosk that holds the same residents and passes."""
    return hashlib.sha256(_canonical({"residents": [list(r) for r in residents],
                                      "passes": [list(p) for p in passes]})).hexdigest()


def registry_snapshot(db: Database) -> Dict[str, Any]:
    residents, passes = registry_rows(db)
    return {"residents": residents, "passes": passes, "digest": registry_digest(residents, passes)}


def registry_change(old: Dict[str, Any], new: Dict[str, Any], base: int) -> Dict[str, Any]:
    """What turns the snapshot body ``old`` (at version ``base``) into ``new``."""
    before_r = {r[0]: r for r in old["residents"]}
    before_p = {p[0]: p for p in old["passes"]}
    now_r = {r[0]: r for r in new["residents"]}
    return {"base": base,
            "residents": [r for r in new["residents"] if before_r.get(r[0]) != r],
            "passes": [p for p in new["passes"] if before_p.get(p[0]) != p],
            "deleted": sorted(i for i in before_r if i not in now_r),
            "digest": new["digest"]}


def _rows(value: Any, columns: Sequence[str], what: str) -> List[Tuple[Any, ...]]:
    if not isinstance(value, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in value):
        raise DocumentError("{} must be a list of rows of {} values".format(what, len(columns)))
    return [tuple(r) for r in value]


def _apply_registry(db: Database, doc: Document, held: Dict[str, Any]) -> None:
    body = doc.body
    residents = _rows(body.get("residents"), RESIDENT_COLUMNS, "residents")
    passes = _rows(body.get("passes"), PASS_COLUMNS, "passes")
    change = doc.kind == "registry-change"
    if change:
        base = _whole(body.get("base"), "base")
        if base != held.get("registry", 0):
            raise Stale("a change from version {} but this kiosk holds version {}: waiting for the next snapshot"
                        .format(base, held.get("registry", 0)))
        deleted = body.get("deleted")
        if not isinstance(deleted, list):
            raise DocumentError("deleted must be a list")
    digest = body.get("digest")
    put_r = "INSERT OR REPLACE INTO residents ({}) VALUES ({})".format(", ".join(RESIDENT_COLUMNS),
                                                                       ", ".join("?" * len(RESIDENT_COLUMNS)))
    put_p = "INSERT OR REPLACE INTO passes ({}) VALUES ({})".format(", ".join(PASS_COLUMNS),
                                                                   ", ".join("?" * len(PASS_COLUMNS)))

    def write(conn: Any) -> None:
        if change:
            conn.executemany("DELETE FROM passes WHERE resident_id = ?", [(i,) for i in deleted])
            conn.executemany("DELETE FROM residents WHERE id = ?", [(i,) for i in deleted])
        else:
            conn.execute("DELETE FROM passes")
            conn.execute("DELETE FROM residents")
        conn.executemany(put_r, residents)
        conn.executemany(put_p, passes)
        r = [list(x) for x in conn.execute("SELECT {} FROM residents ORDER BY id".format(", ".join(RESIDENT_COLUMNS)))]
        p = [list(x) for x in conn.execute("SELECT {} FROM passes ORDER BY serial".format(", ".join(PASS_COLUMNS)))]
        if registry_digest(r, p) != digest:
            raise DocumentError("the registry would not match the office's (digest differs): not applied")

    try:
        db.transaction(write)
    except DocumentError:
        raise
    except Exception as exc:  # sqlite: a full disk, a lock held too long; nothing was changed
        raise Unapplied("the registry could not be applied here: {}".format(exc)) from None


# ---- the policy -----------------------------------------------------------------------------


def policy_body(home: Home) -> Dict[str, Any]:
    return {"policy": config_to_dict(load_config(home.config))["policy"]}


def _apply_policy(home: Home, doc: Document) -> None:
    policy = doc.body.get("policy")
    if not isinstance(policy, dict):
        raise DocumentError("policy must be an object")
    try:
        current = config_to_dict(load_config(home.config))
        current["policy"] = policy
        save_config(config_from_dict(current, "the office's policy"), home.config)
    except ConfigError as exc:
        raise DocumentError(str(exc)) from None
    except OSError as exc:
        raise Unapplied("the policy could not be saved here: {}".format(exc)) from None


# ---- the community key ----------------------------------------------------------------------


def public_key_text(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _public_key(text: Any) -> Ed25519PublicKey:
    try:
        raw = base64.urlsafe_b64decode(str(text) + "==")
        if len(raw) != 32:
            raise ValueError("not 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise DocumentError("public_key is not an Ed25519 key: {}".format(exc)) from None


def _apply_key(home: Home, doc: Document, old: Ed25519PublicKey) -> None:
    from kiosk.store.keyring import remember_previous
    from kiosk.store.passes import write_public_key
    from kiosk.store.revocations import RevocationError, apply_list

    new = _public_key(doc.body.get("public_key"))
    until = _whole(doc.body.get("old_passes_until"), "old_passes_until")
    listed = doc.body.get("revocations")
    if not isinstance(listed, str):
        raise DocumentError("revocations must be the revocation list signed with the new key")
    remember_previous(home, old, until)  # first: harmless alone, and old passes keep working after the switch
    try:
        apply_list(home, listed.encode("utf-8"), new)  # the list under the new key, checked before the key is taken
    except RevocationError as exc:
        raise DocumentError("the revocation list that comes with the new key was refused: {}".format(exc)) from None
    write_public_key(new, home.public_key)


# ---- applying -------------------------------------------------------------------------------


def apply_document(home: Home, db: Optional[Database], data: bytes) -> Document:
    """Check and apply one document from the office; returns it. DocumentError (or its Stale) when refused, with
    nothing changed. ``db``: the kiosk's database (registry documents)."""
    from kiosk.store.keyring import KeyRing

    ring = KeyRing(home)
    current = ring.current()
    try:
        doc = parse_document(data, current)
    except DocumentError as first:
        # the key document that installed the current key, delivered again: signed with the key it replaced
        doc = _reapplied_key(data, ring, first)
    held = held_versions(home)
    seq = doc.sequence
    have = int(held.get(seq, 0))
    if doc.version == have and doc.kind == "registry-change":
        raise Stale("version {} of the registry is held already".format(have))
    if doc.version < have:
        raise Stale("version {} of the {} is older than version {} held here: refused (a replay?)".format(
            doc.version, seq, have))
    if doc.version == have:
        if doc.kind == "registry" and doc.body.get("digest") == held.get("registry_digest"):
            raise Stale("version {} of the registry is held already".format(have))
        if doc.kind != "registry" and _digest(doc) == held.get(seq + "_digest"):
            raise Stale("version {} of the {} is held already".format(have, seq))
        if doc.kind != "registry":
            raise DocumentError("refused: a different {} with version {} was accepted here before".format(seq, have))
    if doc.kind in ("registry", "registry-change"):
        if db is None:
            raise DocumentError("no database to apply the registry to")
        _apply_registry(db, doc, held)
        _remember(home, registry=doc.version, registry_digest=doc.body.get("digest"))
    elif doc.kind == "policy":
        _apply_policy(home, doc)
        _remember(home, policy=doc.version, policy_digest=_digest(doc))
    else:
        _apply_key(home, doc, current if doc.key_id == key_id(current) else ring.previous_key(doc.key_id))
        _remember(home, key=doc.version, key_digest=_digest(doc))
    return doc


def _digest(doc: Document) -> str:
    return hashlib.sha256(_canonical(doc.body)).hexdigest()


def _reapplied_key(data: bytes, ring: Any, first: DocumentError) -> Document:
    """A key document signed by a previous key whose new key is the one held now (the first try stopped between
    the revocation list and the key, or a retained copy came again): checked, then taken as an ordinary document."""
    try:
        fields = json.loads(data.decode("utf-8"))
        kid = bytes.fromhex(fields["key_id"])
        previous = ring.previous_key(kid)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
        raise first from None
    if previous is None:
        raise first
    doc = parse_document(data, previous)
    if doc.kind != "key" or key_id(_public_key(doc.body.get("public_key"))) != key_id(ring.current()):
        raise first
    return doc
