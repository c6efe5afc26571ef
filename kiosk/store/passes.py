"""Signed pass tokens: what the QR code carries, and how the kiosk checks it.

A token is ``DABAI1.`` + base64url(body + signature) where body is 25 bytes::

    version (1) | key id (8: sha256 of the community public key) | resident id (4) |
    serial (4) | issued at (4, unix s) | expires at (4, unix s)

and the signature is Ed25519 over the body (64 bytes): 126 characters, a small QR code.
The kiosk holds only the community's public key; the issuing command holds the private key
(file mode 0600). The key id lets the kiosk tell "another community's pass" from "forged".

A pass has exactly one spelling: base64url without padding, whitespace or other characters, the unused
low bits of the last character zero. Anything else, even if it decodes to a genuinely signed body, is
``malformed``, so a copied pass cannot be turned into many "different" payloads that all open the gate.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import math
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.config import CommunityConfig, atomic_write
from kiosk.core.events import PassCheck
from kiosk.store.registry import MAX_ID, Registry, RegistryError

if TYPE_CHECKING:
    from kiosk.store.keyring import KeyRing
    from kiosk.store.revocations import RevocationWatch

PREFIX = "DABAI1."
VERSION = 1
_BODY = struct.Struct(">B8sIIII")
_SIG_LEN = 64
_B64_LEN = 119  # base64url of body + signature (89 bytes), unpadded
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
TOKEN_LEN = len(PREFIX) + _B64_LEN  # 126: every pass has exactly this many characters
CLOCK_SKEW_S = 120  # a pass issued on a clock slightly ahead is still fine
# the longest validity a pass can be issued for: community.pass_days' maximum (3650)
MAX_DAYS = {f.name: f for f in dataclasses.fields(CommunityConfig)}["pass_days"].metadata["max"]

# Every reason a pass can be refused, in the order they are checked.
REASONS = (
    "malformed",
    "wrong_community",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "revocations_unsure",  # the revocation list is missing, altered or rolled back: nothing is honoured
    "pass_revoked",
    "unknown_pass",  # genuine, but this kiosk was never told about its serial
    "unknown_resident",
    "resident_revoked",
)


class KeyFileError(Exception):
    """A key file is missing or unusable."""


@dataclass(frozen=True)
class Token:
    key_id: bytes
    resident_id: int
    serial: int
    issued_at: int
    expires_at: int


def key_id(public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8]


# ---- keys -----------------------------------------------------------------------------------


def create_keys(private_path: Path, public_path: Path) -> Ed25519PrivateKey:
    """Make the community's key pair; the private key is readable by its owner only."""
    if private_path.exists():
        raise KeyFileError("{} already exists; refusing to overwrite a community key".format(private_path))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    atomic_write(private_path, pem, mode=0o600)
    write_public_key(key.public_key(), public_path)
    return key


def write_public_key(public_key: Ed25519PublicKey, path: Path) -> None:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    atomic_write(path, pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyFileError("no community private key at {}".format(path)) from None
    except (ValueError, TypeError) as exc:
        raise KeyFileError("{} is not a usable private key: {}".format(path, exc)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("{} is not an Ed25519 key".format(path))
    if os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(str(path), 0o600)  # tighten a key someone copied with loose permissions
    return key


def load_or_create_private_key(private_path: Path, public_path: Path) -> Ed25519PrivateKey:
    """The community's private key; made on first use, but never on a machine that holds only the public key (a gate
    of a community whose passes are issued elsewhere): a new pair would replace the community's key and every pass
    would stop opening the gate."""
    if private_path.exists():
        key = load_private_key(private_path)
        if not public_path.exists():
            write_public_key(key.public_key(), public_path)
        return key
    if public_path.exists():
        raise KeyFileError("this machine holds only the community's public key ({}), not its private key: passes are "
                           "issued at the issuing station (the property office)".format(public_path))
    return create_keys(private_path, public_path)


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(
            "no community public key at {}: issue a pass once (`dabai-kiosk pass issue`) "
            "or copy the community's community.pub there".format(path)
        ) from None
    except (ValueError, TypeError) as exc:
        raise KeyFileError("{} is not a usable public key: {}".format(path, exc)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("{} is not an Ed25519 key".format(path))
    return key


# ---- tokens ---------------------------------------------------------------------------------


def sign_token(
    key: Ed25519PrivateKey,
    resident_id: int,
    serial: int,
    issued_at: int,
    expires_at: int,
    claimed_key_id: Optional[bytes] = None,
) -> str:
    """A signed token. ``claimed_key_id`` lets tests and the demo forge a pass that names
    another community's key but is signed with the wrong one, as an attacker would."""
    kid = claimed_key_id if claimed_key_id is not None else key_id(key.public_key())
    body = _BODY.pack(VERSION, kid, resident_id, serial, issued_at, expires_at)
    return PREFIX + _encode(body + key.sign(body))


def _encode(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def parse_token(text: str) -> Optional[Tuple[Token, bytes, bytes]]:
    """(token, body, signature), or None when the text is not a Dabai token in its one canonical spelling."""
    if not isinstance(text, str) or len(text) != TOKEN_LEN or not text.startswith(PREFIX):
        return None
    b64 = text[len(PREFIX) :]
    if not _B64_ALPHABET.issuperset(b64):  # the decoder would skip stray characters; we do not
        return None
    try:
        blob = base64.urlsafe_b64decode(b64 + "=")
    except (binascii.Error, ValueError):
        return None
    if _encode(blob) != b64:  # e.g. the last character's unused low bits set
        return None
    body, signature = blob[: _BODY.size], blob[_BODY.size :]
    version, kid, resident_id, serial, issued_at, expires_at = _BODY.unpack(body)
    if version != VERSION or resident_id == 0 or serial == 0 or expires_at <= issued_at:
        return None
    return Token(kid, resident_id, serial, issued_at, expires_at), body, signature


class PassVerifier:
    """Checks a QR payload against the community key, the signed revocation list and the registry."""

    def __init__(
        self, public_key: Ed25519PublicKey, registry: Registry, revocations: "Optional[RevocationWatch]" = None,
        keys: "Optional[KeyRing]" = None,
    ) -> None:
        self.public_key = public_key
        self.key_id = key_id(public_key)
        self.registry = registry
        self.revocations = revocations
        self.keys = keys  # when given, the keys in force at each check (the office may rotate the community key)

    def check(self, payload: str, now: float) -> PassCheck:
        parsed = parse_token(payload)
        if parsed is None:
            return PassCheck(False, "malformed")
        token, body, signature = parsed
        public_key = self.keys.pass_key(token.key_id, now) if self.keys is not None else (
            self.public_key if token.key_id == self.key_id else None)
        if public_key is None:
            return PassCheck(False, "wrong_community", serial=token.serial)
        try:
            public_key.verify(signature, body)
        except InvalidSignature:
            return PassCheck(False, "bad_signature")
        # From here on the token is genuinely ours, so its fields can be trusted.
        resident = self.registry.find(token.resident_id)
        name = resident.name if resident is not None else None

        def refuse(reason: str) -> PassCheck:
            return PassCheck(False, reason, token.resident_id, name, token.serial)

        if now >= token.expires_at:
            return refuse("expired")
        if now + CLOCK_SKEW_S < token.issued_at:
            return refuse("not_yet_valid")
        listed = self.revocations.current() if self.revocations is not None else None
        if self.revocations is not None and listed is None:
            return refuse("revocations_unsure")
        record = self.registry.get_pass(token.serial)
        if (listed is not None and token.serial in listed.passes) or (
            record is not None and (record.revoked_at is not None or record.resident_id != token.resident_id)
        ):
            return refuse("pass_revoked")
        if listed is not None and token.resident_id in listed.residents:
            return refuse("resident_revoked")
        if record is None:
            return refuse("unknown_pass")
        if resident is None:
            return refuse("unknown_resident")
        if not resident.active:
            return refuse("resident_revoked")
        return PassCheck(True, "ok", resident.id, resident.name, token.serial)


def pass_window(days: float, now: float) -> Tuple[int, int]:
    """(issued at, expires at) of a pass valid for ``days`` from ``now``; RegistryError when ``days`` is not a
    finite number of days in (0, MAX_DAYS] or the expiry would not fit the pass's 32-bit time field."""
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days):
        raise RegistryError("days = {!r}: must be a finite number of days".format(days))
    if not 0 < days <= MAX_DAYS:
        raise RegistryError("days = {!r}: a pass is valid for more than 0 and at most {} days".format(days, MAX_DAYS))
    issued, expires = int(now), int(now + days * 86400)
    if expires <= issued:
        raise RegistryError("days = {!r}: too short, the pass would expire the second it is issued".format(days))
    if issued < 0 or expires > MAX_ID:
        raise RegistryError("days = {!r}: the pass would expire after 2106-02-07, the end of its 32-bit time field"
                            .format(days))
    return issued, expires


def issue_pass(
    registry: Registry, key: Ed25519PrivateKey, resident_id: int, days: float, now: float, min_serial: int = 1
) -> Tuple[int, str]:
    """Record a new pass for an active resident and return (serial, token). Every field is checked to fit
    the signed body before the pass is recorded, so a refused pass leaves nothing behind. ``min_serial``:
    see :meth:`Registry.new_pass`."""
    issued, expires = pass_window(days, now)
    resident = registry.get(resident_id)
    if not resident.active:
        raise RegistryError("resident {} ({}) is revoked; reinstate them first".format(resident.id, resident.name))
    if not 1 <= resident.id <= MAX_ID:
        raise RegistryError("resident id {} does not fit a pass's 32-bit field".format(resident.id))
    record = registry.new_pass(resident.id, issued, expires, min_serial)
    return record.serial, sign_token(key, resident.id, record.serial, issued, expires)


def pass_card_lines(community: str, name: str, unit: str, serial: int, expires_at: float) -> List[str]:
    """The lines printed under a pass's QR code, the same on the operator screen's card and from the command
    line: the community, who it is for, and its number and expiry."""
    expiry = time.strftime("%Y-%m-%d", time.localtime(expires_at))
    return [community, "{}  {}".format(name, unit), "通行证 #{}  有效期至 {}".format(serial, expiry)]
