"""Pass fuzzing: many altered spellings and forgeries of genuine passes, none of which may open the gate.

A temporary data home gets a community key, two residents and a pass each; one of the passes is revoked
(in the database and on the signed revocation list). Each payload is one of those two passes put through
one to three mutations: characters substituted, inserted or deleted (base64url, other ASCII, whitespace,
look-alike Unicode), the ``+/`` alphabet, ``=`` padding, case flips, the unused low bits of the last
character, truncation, a changed prefix, bits flipped in the decoded body or signature, fields of the body
edited under the old signature, the body re-signed with another key (claiming ours or its own key id),
signatures swapped between the passes. The kiosk's own verifier (with its revocation watch) checks each.

The goals: no payload other than the genuine pass's one spelling is accepted, and nothing raises.
"""

from __future__ import annotations

import base64
import random
import struct
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import Home, atomic_write
from kiosk.store.db import Database
from kiosk.store.passes import PREFIX, PassVerifier, issue_pass, key_id, load_public_key, parse_token, write_public_key
from kiosk.store.registry import Registry
from kiosk.store.revocations import RevocationWatch, revoke_pass

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JUNK = "+/=.:;,!?*#%&$@~ \t\r\n\x00\x7f\u00a0\u200b\u3000\ufeffÁéＡｂ１А"  # ASCII, whitespace, look-alikes
BODY = struct.Struct(">B8sIIII")
NOW = 1_790_000_000  # a fixed clock and keys drawn from the seed: the same seed gives the same payloads


class _Fuzz:
    """Mutations of a pass; ``self.bases`` are the genuine tokens, ``self.keys`` other communities' keys."""

    def __init__(self, rng: random.Random, bases: List[str], our_key_id: bytes) -> None:
        self.rng = rng
        self.bases = bases
        self.our_key_id = our_key_id
        self.keys = [Ed25519PrivateKey.from_private_bytes(self._random_bytes(32)) for _ in range(3)]
        self.blobs = [base64.urlsafe_b64decode(t[len(PREFIX):] + "=") for t in bases]
        self.mutations: Dict[str, Callable[[str], str]] = {
            "substitute": self.substitute,
            "insert": self.insert,
            "delete": self.delete,
            "std_alphabet": self.std_alphabet,
            "padding": self.padding,
            "whitespace": self.whitespace,
            "case_flip": self.case_flip,
            "last_char_bits": self.last_char_bits,
            "truncate": self.truncate,
            "append": self.append,
            "prefix": self.prefix,
            "bit_flip": self.bit_flip,
            "edit_field": self.edit_field,
            "resign_other_key": self.resign_other_key,
            "swap_key_id": self.swap_key_id,
            "swap_signature": self.swap_signature,
            "random_body": self.random_body,
        }

    # text-level

    def _pos(self, token: str, body_only: bool = True) -> int:
        low = len(PREFIX) if body_only and self.rng.random() < 0.9 else 0
        return self.rng.randint(low, max(low, len(token) - 1)) if token else 0

    def _char(self) -> str:
        return self.rng.choice(B64URL) if self.rng.random() < 0.6 else self.rng.choice(JUNK)

    def substitute(self, token: str) -> str:
        i = self._pos(token)
        return token[:i] + self._char() + token[i + 1:]

    def insert(self, token: str) -> str:
        i = self.rng.randint(0, len(token))
        return token[:i] + self._char() + token[i:]

    def delete(self, token: str) -> str:
        i = self._pos(token)
        return token[:i] + token[i + 1:]

    def std_alphabet(self, token: str) -> str:
        if self.rng.random() < 0.5:  # the standard alphabet, padded, of the same bytes
            blob = _decode(token)
            if blob is not None:
                return PREFIX + base64.b64encode(blob).decode("ascii")
        return token.replace("-", "+").replace("_", "/") if self.rng.random() < 0.5 else \
            token.replace("-", "+", 1).replace("_", "/", 1)

    def padding(self, token: str) -> str:
        return token + "=" * self.rng.randint(1, 3)

    def whitespace(self, token: str) -> str:
        space = self.rng.choice([" ", "\n", "\t", "\r\n", "\u3000", "\u200b", "  "])
        where = self.rng.random()
        if where < 0.3:
            return space + token
        if where < 0.6:
            return token + space
        i = self._pos(token)
        return token[:i] + space + token[i:]

    def case_flip(self, token: str) -> str:
        if self.rng.random() < 0.1:
            return token.lower() if self.rng.random() < 0.5 else token.swapcase()
        i = self._pos(token)
        return token[:i] + token[i].swapcase() + token[i + 1:] if i < len(token) else token

    def last_char_bits(self, token: str) -> str:
        if not token:
            return token
        last = token[-1]
        if last not in B64URL:
            return token
        value = B64URL.index(last)
        return token[:-1] + B64URL[(value & ~3) | self.rng.randint(1, 3)]

    def truncate(self, token: str) -> str:
        return token[: self.rng.randint(0, max(0, len(token) - 1))]

    def append(self, token: str) -> str:
        tail = self.rng.choice(["A", "AA", "AAAA", "=", ".", token, "".join(self._char() for _ in range(8))])
        return token + tail

    def prefix(self, token: str) -> str:
        rest = token[len(PREFIX):] if token.startswith(PREFIX) else token
        return self.rng.choice(["dabai1.", "DABAI1:", "DABAI1..", "DABAI2.", "DABAI1", " DABAI1.", "ＤABAI1.",
                                "DABAI0.", "", PREFIX + PREFIX]) + rest

    # byte-level: the result is spelled canonically, so only the signature check can refuse it

    def bit_flip(self, token: str) -> str:
        blob = _decode(token)
        if blob is None:
            return token
        data = bytearray(blob)
        for _ in range(self.rng.randint(1, 3)):
            i = self.rng.randrange(len(data) * 8)
            data[i // 8] ^= 1 << (i % 8)
        return _encode(bytes(data))

    def edit_field(self, token: str) -> str:
        blob = _decode(token)
        if blob is None or len(blob) < BODY.size:
            return token
        fields = list(BODY.unpack(blob[: BODY.size]))
        which = self.rng.randint(2, 5)  # resident id, serial, issued at, expires at
        fields[which] = self.rng.choice([0, 1, 2, fields[which] + 1, fields[which] - 1 if fields[which] else 0,
                                         0xFFFFFFFF, self.rng.getrandbits(32)])
        return _encode(BODY.pack(*fields) + blob[BODY.size:])

    def resign_other_key(self, token: str) -> str:
        blob = _decode(token)
        if blob is None or len(blob) < BODY.size:
            return token
        key = self.rng.choice(self.keys)
        fields = list(BODY.unpack(blob[: BODY.size]))
        if self.rng.random() < 0.5:
            fields[1] = key_id(key.public_key())  # honest about its key: another community
        body = BODY.pack(*fields)
        return _encode(body + key.sign(body))

    def swap_key_id(self, token: str) -> str:
        blob = _decode(token)
        if blob is None or len(blob) < BODY.size:
            return token
        kid = self.rng.choice([key_id(k.public_key()) for k in self.keys] + [bytes(8), self._random_bytes(8)])
        return _encode(blob[:1] + kid + blob[9:])

    def swap_signature(self, token: str) -> str:
        blob = _decode(token)
        if blob is None or len(blob) < BODY.size:
            return token
        other = self.rng.choice(self.blobs)
        return _encode(blob[: BODY.size] + other[BODY.size:])

    def random_body(self, token: str) -> str:
        return _encode(self._random_bytes(89))

    def _random_bytes(self, n: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def payload(self) -> Tuple[str, str]:
        """(mutation names, payload): a genuine pass through one to three mutations."""
        token = self.rng.choice(self.bases)
        names = [self.rng.choice(list(self.mutations)) for _ in range(self.rng.choice([1, 1, 1, 2, 3]))]
        for name in names:
            token = self.mutations[name](token)
        return "+".join(names), token


def _decode(token: str) -> Optional[bytes]:
    parsed = parse_token(token)
    return parsed[1] + parsed[2] if parsed is not None else None


def _encode(blob: bytes) -> str:
    return PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def _percentile(ordered: List[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_pass_fuzz(n: int = 100_000, seed: int = 0) -> Dict[str, Any]:
    """Try ``n`` mutated payloads against the kiosk's verifier; report what was accepted, what raised and
    how long a check took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dabai-passfuzz-") as tmp:
        home = Home(Path(tmp))
        key = Ed25519PrivateKey.from_private_bytes(bytes(rng.getrandbits(8) for _ in range(32)))
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        atomic_write(home.private_key, pem, mode=0o600)
        write_public_key(key.public_key(), home.public_key)
        db = Database(home.database)
        try:
            registry = Registry(db)
            now = NOW
            zhang = registry.add("张三", "3-201")
            li = registry.add("李四", "5-502")
            _, genuine = issue_pass(registry, key, zhang.id, 365, now)
            revoked_serial, revoked = issue_pass(registry, key, li.id, 365, now)
            revoke_pass(home, registry, revoked_serial)
            public = load_public_key(home.public_key)
            verifier = PassVerifier(public, registry, RevocationWatch(home, public))
            if not verifier.check(genuine, now).valid or verifier.check(revoked, now).reason != "pass_revoked":
                raise RuntimeError("the fuzz home's genuine pass does not verify")
            fuzz = _Fuzz(rng, [genuine, revoked], key_id(public))
            accepted: Dict[str, str] = {}
            errors: List[str] = []
            reasons: Counter = Counter()  # reason → payloads
            times_ms: List[float] = []
            seen = set()
            respelled_genuine = 0
            for _ in range(n):
                names, payload = fuzz.payload()
                seen.add(payload)
                t0 = time.perf_counter()
                try:
                    check = verifier.check(payload, now)
                except Exception as exc:  # the goal is none: count and show a few
                    times_ms.append((time.perf_counter() - t0) * 1000.0)
                    errors.append("{} on {!r}: {!r}".format(names, payload, exc))
                    continue
                times_ms.append((time.perf_counter() - t0) * 1000.0)
                reasons[check.reason] += 1
                if payload == genuine:
                    respelled_genuine += 1  # the mutations cancelled out: the genuine pass itself
                elif check.valid:
                    accepted.setdefault(payload, names)
        finally:
            db.close()
    ordered = sorted(times_ms)
    return {
        "payloads": n,
        "distinct_payloads": len(seen),
        "genuine_unchanged": respelled_genuine,
        "accepted_non_genuine": len(accepted),
        "accepted_examples": [{"mutations": m, "payload": p} for p, m in list(accepted.items())[:5]],
        "exceptions": len(errors),
        "exception_examples": errors[:5],
        "reasons": dict(reasons.most_common()),
        "verify_ms": {"p50": round(_percentile(ordered, 0.5), 4), "p99": round(_percentile(ordered, 0.99), 4),
                      "max": round(ordered[-1], 4) if ordered else 0.0},
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 1),
    }
