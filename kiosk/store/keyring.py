"""The community keys a kiosk trusts: the current one, and the ones it replaced while their passes are honoured.

``keys/community.pub`` is the current key: it alone signs revocation lists and the office's documents. When the
office rotates the key (:mod:`kiosk.fleet.documents`, kind ``key``), the replaced key moves to
``keys/previous-keys.json`` with the time until which passes it signed are still honoured, so residents need not
all change their passes on the same day::

    [{"key_id": "0123456789abcdef", "public_key": "<32 bytes, base64url>", "passes_until": 1790000000}]

A running kiosk re-reads both files when they change (:class:`KeyRing`), so a rotation needs no restart.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.config import Home, atomic_write
from kiosk.store.passes import key_id, load_public_key

log = logging.getLogger(__name__)

PREVIOUS_FILE = "previous-keys.json"


def previous_path(home: Home) -> Path:
    return home.keys / PREVIOUS_FILE


def _raw(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_previous(home: Home) -> List[Tuple[Ed25519PublicKey, int]]:
    """The replaced keys and until when their passes are honoured; a damaged file honours none of them."""
    try:
        entries = json.loads(previous_path(home).read_text(encoding="utf-8"))
        keys = []
        for entry in entries:
            key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(entry["public_key"] + "=="))
            if key_id(key).hex() != entry["key_id"]:
                raise ValueError("key_id does not match the key")
            keys.append((key, int(entry["passes_until"])))
        return keys
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        log.error("%s is unusable (%s): passes signed with replaced keys are refused", previous_path(home), exc)
        return []


def remember_previous(home: Home, public_key: Ed25519PublicKey, passes_until: int) -> None:
    """Keep a replaced key, honouring its passes until ``passes_until`` (unix seconds)."""
    kid = key_id(public_key).hex()
    entries = [{"key_id": key_id(k).hex(), "public_key": _raw(k), "passes_until": until}
               for k, until in read_previous(home) if key_id(k).hex() != kid]
    entries.append({"key_id": kid, "public_key": _raw(public_key), "passes_until": int(passes_until)})
    atomic_write(previous_path(home), (json.dumps(entries, indent=1) + "\n").encode("ascii"))


def _stamp(path: Path) -> Any:
    try:
        st = os.stat(str(path))
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class KeyRing:
    """The current community key and the replaced ones, re-read when their files change (two ``stat`` calls)."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._stamp: Any = ()
        self._current: Optional[Ed25519PublicKey] = None
        self._previous: Dict[bytes, Tuple[Ed25519PublicKey, int]] = {}
        self._refresh()

    def _refresh(self) -> None:
        stamp = (_stamp(self.home.public_key), _stamp(previous_path(self.home)))
        if stamp == self._stamp:
            return
        current = load_public_key(self.home.public_key)  # KeyFileError: no key at all, the kiosk cannot check passes
        self._previous = {key_id(k): (k, until) for k, until in read_previous(self.home)}
        if self._current is not None and key_id(current) != key_id(self._current):
            log.warning("community key %s is in force now (was %s)", key_id(current).hex(), key_id(self._current).hex())
        self._current, self._stamp = current, stamp

    def current(self) -> Ed25519PublicKey:
        """The key that signs lists and documents now."""
        try:
            self._refresh()
        except Exception as exc:  # a key file being replaced: keep the one in hand
            if self._current is None:
                raise
            log.warning("cannot re-read the community key (%s); keeping %s", exc, key_id(self._current).hex())
        assert self._current is not None
        return self._current

    def previous_key(self, kid: bytes) -> Optional[Ed25519PublicKey]:
        self.current()
        entry = self._previous.get(kid)
        return entry[0] if entry is not None else None

    def pass_key(self, kid: bytes, now: float) -> Optional[Ed25519PublicKey]:
        """The key that checks a pass with key id ``kid`` at ``now``: the current one, or a replaced one whose passes
        are still honoured; None for any other."""
        current = self.current()
        if kid == key_id(current):
            return current
        entry = self._previous.get(kid)
        if entry is not None and now < entry[1]:
            return entry[0]
        return None
