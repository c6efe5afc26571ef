"""The access log as evidence: records chained by hash, checkpoints signed with the kiosk's own key.

Each record's hash covers its fields and the previous record's hash, so editing, deleting or
reordering any record breaks the chain at that record. Every few records (and on a timer) the
kiosk signs a checkpoint ``(kiosk, seq, hash, ts)`` with its own Ed25519 key; a checkpoint is
stored in the database and, the latest one, in a head file kept apart from it (``state/``), so a
rewritten chain fails at the checkpoint and a database that was emptied, cut short or replaced by
an older copy no longer reaches the head. :func:`verify_chain` checks all of it and names the first
bad record; it is pure (rows in, findings out), so the office can run it on another kiosk's records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.config import atomic_write

GENESIS = "0" * 64
# The fields a record's hash covers, in the order of the access_log table (kiosk.store.db).
CHAINED = ("seq", "uid", "ts", "outcome", "reason", "resident_id", "resident_name", "mask", "pass_reason",
           "pass_serial", "intent", "gate_opened")
_CHECKPOINT_DOMAIN = b"dabai-log-checkpoint/1\n"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_hash(fields: Dict[str, Any], prev_hash: str) -> str:
    """sha256 over the previous hash and the record's chained fields (``gate_opened`` as 0/1)."""
    body = {name: fields.get(name) for name in CHAINED}
    body["gate_opened"] = int(bool(body["gate_opened"]))
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(body)).hexdigest()


# ---- the kiosk's own key ------------------------------------------------------------------------


def kiosk_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_kiosk_key(path: Path) -> Ed25519PrivateKey:
    """The per-kiosk signing key (``keys/kiosk.key``, mode 0600; ``kiosk.pub`` beside it for the office)."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("{} is not an Ed25519 key".format(path))
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        atomic_write(path, pem, mode=0o600)
    pub = path.with_suffix(".pub")
    if not pub.exists():
        atomic_write(pub, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def load_kiosk_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("{} is not an Ed25519 key".format(path))
    return key


# ---- checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    kiosk: str
    seq: int
    hash: str
    ts: float
    sig: str  # hex Ed25519 signature

    def body(self) -> bytes:
        return _CHECKPOINT_DOMAIN + canonical({"kiosk": self.kiosk, "seq": self.seq, "hash": self.hash, "ts": self.ts})

    def valid(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(bytes.fromhex(self.sig), self.body())
        except (InvalidSignature, ValueError):
            return False
        return kiosk_id(public_key) == self.kiosk

    def to_dict(self) -> Dict[str, Any]:
        return {"kiosk": self.kiosk, "seq": self.seq, "hash": self.hash, "ts": self.ts, "sig": self.sig}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Checkpoint":
        return cls(str(data["kiosk"]), int(data["seq"]), str(data["hash"]), float(data["ts"]), str(data["sig"]))


def sign_checkpoint(key: Ed25519PrivateKey, seq: int, hash_: str, ts: float) -> Checkpoint:
    unsigned = Checkpoint(kiosk_id(key.public_key()), seq, hash_, ts, "")
    return Checkpoint(unsigned.kiosk, seq, hash_, ts, key.sign(unsigned.body()).hex())


# ---- the head file (state/accesslog-head.json) --------------------------------------------------


@dataclass(frozen=True)
class Head:
    """What the kiosk remembers of its log apart from the database."""

    db_id: str
    checkpoint: Optional[Checkpoint]
    alarm: Optional[Dict[str, Any]] = None  # an unacknowledged loss: {"reason", "detected_at", "text"}


def read_head(path: Path) -> Optional[Head]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cp = data.get("checkpoint")
        return Head(str(data["db_id"]), Checkpoint.from_dict(cp) if cp else None, data.get("alarm"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A damaged head is itself an alarm: treat it as a head that nothing can reach.
        return Head("", None, {"reason": "head_damaged", "detected_at": 0.0,
                               "text": "the log's head file {} is damaged: {}".format(path, exc)})


def write_head(path: Path, head: Head) -> None:
    data = {"db_id": head.db_id, "checkpoint": head.checkpoint.to_dict() if head.checkpoint else None,
            "alarm": head.alarm}
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"), mode=0o600)


# ---- verification -------------------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    records: int
    first_bad: Optional[int]  # seq of the first bad record (or where the chain stops)
    problems: List[str]
    notes: List[str]
    last_checkpoint: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "first_bad_seq": self.first_bad,
                "problems": self.problems, "notes": self.notes, "last_checkpoint": self.last_checkpoint}


def verify_chain(rows: Sequence[Dict[str, Any]], checkpoints: Iterable[Checkpoint],
                 public_key: Optional[Ed25519PublicKey], head: Optional[Head] = None) -> Verdict:
    """Check ``rows`` (in storage order, each with the CHAINED fields, ``prev_hash`` and ``hash``) against
    each other, the signed ``checkpoints`` and the remembered ``head``. Problems name the first bad record."""
    problems: List[str] = []
    notes: List[str] = []
    first_bad: Optional[int] = None

    def bad(seq: Optional[int], text: str) -> None:
        nonlocal first_bad
        if first_bad is None and seq is not None:
            first_bad = seq
        problems.append(text)

    chained = [r for r in rows if r.get("seq") is not None]
    legacy = len(rows) - len(chained)
    if legacy:
        notes.append("{} record(s) from before the chain was introduced are not covered".format(legacy))
    by_seq: Dict[int, str] = {}
    prev_seq, prev_hash = 0, GENESIS
    broken = False
    for row in chained:
        seq = int(row["seq"])
        if not broken:
            if seq <= prev_seq:
                bad(seq, "record {} comes after record {}: records were reordered or duplicated".format(seq, prev_seq))
                broken = True
            elif seq != prev_seq + 1:
                gap = "record {}".format(prev_seq + 1) if seq == prev_seq + 2 else \
                    "records {}-{}".format(prev_seq + 1, seq - 1)
                if row["prev_hash"] == prev_hash:
                    bad(seq, "{} missing before record {}".format(gap, seq))
                else:
                    bad(prev_seq + 1, "{} deleted (record {} does not follow record {})".format(gap, seq, prev_seq))
                broken = True
            elif row["prev_hash"] != prev_hash:
                bad(seq, "record {} does not follow record {}: a record was deleted, inserted or reordered"
                    .format(seq, prev_seq))
                broken = True
            elif record_hash(row, prev_hash) != row["hash"]:
                bad(seq, "record {} was edited (its contents do not match its hash)".format(seq))
                broken = True
        by_seq[seq] = row["hash"]
        prev_seq, prev_hash = seq, row["hash"]
    last_seq = prev_seq
    last_cp: Optional[int] = None
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if public_key is None or not cp.valid(public_key):
            bad(cp.seq, "checkpoint at record {} has no valid signature of this kiosk".format(cp.seq))
            continue
        if cp.seq > last_seq:
            bad(last_seq + 1, "the log ends at record {} but a signed checkpoint covers record {}: the tail was cut"
                .format(last_seq, cp.seq))
        elif by_seq.get(cp.seq) != cp.hash:
            bad(cp.seq, "record {} does not match its signed checkpoint: records {}-{} were rewritten"
                .format(cp.seq, (last_cp or 0) + 1, cp.seq))
        last_cp = cp.seq if last_cp is None else max(last_cp, cp.seq)
    if head is not None:
        if head.alarm:
            bad(None, "alarm: {}".format(head.alarm.get("text") or head.alarm.get("reason")))
        hc = head.checkpoint
        if hc is not None:
            if public_key is None or not hc.valid(public_key):
                bad(hc.seq, "the remembered head (record {}) has no valid signature of this kiosk".format(hc.seq))
            elif hc.seq > last_seq:
                bad(last_seq + 1, "the log ends at record {} but the kiosk remembers record {}: records were lost "
                    "(the database was emptied, cut or restored from an older copy)".format(last_seq, hc.seq))
            elif by_seq.get(hc.seq) != hc.hash:
                bad(hc.seq, "record {} is not the one the kiosk remembers: the database was replaced".format(hc.seq))
            last_cp = hc.seq if last_cp is None else max(last_cp, hc.seq)
    if last_cp is not None and last_seq > last_cp:
        notes.append("records {}-{} come after the last signed checkpoint".format(last_cp + 1, last_seq))
    return Verdict(not problems, len(rows), first_bad, problems, notes, last_cp)

