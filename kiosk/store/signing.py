"""What the community's signed files share (the revocation list, the office's documents): JSON read strictly, and
the one spelling of an Ed25519 signature, so a signed file cannot be re-spelled into many that all verify."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, Optional, Type

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.store.passes import key_id

SIGNATURE_CHARS = 86  # 64 bytes in base64url without padding


def _no_duplicates(pairs: Any) -> Dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a field appears twice")
    return dict(pairs)


def _refuse_constant(name: str) -> Any:
    raise ValueError("{} is not a number".format(name))


def strict_json(data: bytes) -> Any:
    """``data`` as UTF-8 JSON with no field twice and no NaN or Infinity; ValueError otherwise."""
    return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)


def encode_signature(signature: bytes) -> str:
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")


def decode_signature(text: Any) -> Optional[bytes]:
    """The 64 signature bytes of ``text``, or None unless it is their one spelling."""
    if not isinstance(text, str) or len(text) != SIGNATURE_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "==")
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 and encode_signature(raw) == text else None


def checked_key_id(kid: Any, public_key: Ed25519PublicKey, what: str, error: Type[Exception]) -> bytes:
    """The 8-byte key id a signed file names, which must be ``public_key``'s; ``error`` says what is wrong."""
    if not isinstance(kid, str) or len(kid) != 16 or not set(kid) <= set("0123456789abcdef"):
        raise error("key_id must be 16 lower-case hex digits")
    if bytes.fromhex(kid) != key_id(public_key):
        raise error("{} is signed for key {}, not this community's key {}".format(what, kid, key_id(public_key).hex()))
    return bytes.fromhex(kid)


def check_signature(signature: Any, message: bytes, public_key: Ed25519PublicKey, what: str,
                    error: Type[Exception]) -> None:
    """``signature`` (its one spelling) over ``message`` by ``public_key``; ``error`` says what is wrong."""
    raw = decode_signature(signature)
    if raw is None:
        raise error("signature must be 64 bytes in base64url without padding")
    try:
        public_key.verify(raw, message)
    except InvalidSignature:
        raise error("{}'s signature does not match: altered or forged".format(what)) from None
