"""The access log: every decision, durable before its gate action, chained by hash, never lost.

A record is written to SQLite (fsync'd commit). If the database cannot take it (disk full, file locked,
deleted or replaced under the kiosk), it goes to a JSON-lines spool file next to it (fsync'd), and if
even that fails it is held in memory; every later write first moves what is waiting into the
database, in order. ``append(..., durable=True)`` is what the gate uses: it returns None, and keeps
nothing, when the record cannot be made durable, so the caller keeps the gate closed.

Records carry a sequence number and a hash over their fields and the previous record's hash
(:mod:`kiosk.store.chain`); every ``checkpoint_every`` records or ``checkpoint_s`` seconds the kiosk signs
a checkpoint with its own key, stores it and remembers the newest one in a head file apart from the
database. Opening a log whose database lost records the head remembers (deleted, emptied, replaced by
an older copy) raises an *alarm*: it is written into the chain, remembered in the head, reported, and
lasts until someone acknowledges it (``dabai-kiosk log acknowledge``). New records continue the chain
from the remembered head, so ``log verify`` names the gap.

One process writes the log (the kiosk, or a command while the kiosk is stopped); others open it
read-only (``writer=False``): they list and export, never insert.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.core.events import Decision
from kiosk.store.chain import (
    GENESIS,
    Checkpoint,
    Head,
    Verdict,
    read_head,
    record_hash,
    sign_checkpoint,
    verify_chain,
    write_head,
)
from kiosk.store.db import Database

log = logging.getLogger(__name__)

COLUMNS = (
    "uid",
    "ts",
    "outcome",
    "reason",
    "resident_id",
    "resident_name",
    "mask",
    "pass_reason",
    "pass_serial",
    "intent",
    "gate_opened",
)
CHAIN_COLUMNS = ("seq", "prev_hash", "hash")
ALARM = "alarm"  # the outcome of a record that reports a loss (reason: what was lost) or its acknowledgement


@dataclass(frozen=True)
class LogRecord:
    uid: str
    ts: float
    outcome: str
    reason: str
    resident_id: Optional[int]
    resident_name: Optional[str]
    mask: Optional[str]
    pass_reason: Optional[str]
    pass_serial: Optional[int]
    intent: Optional[str]
    gate_opened: bool
    seq: Optional[int] = None
    prev_hash: Optional[str] = None
    hash: Optional[str] = None

    @classmethod
    def of(cls, decision: Decision, ts: float) -> "LogRecord":
        fields = asdict(decision)
        return cls(uid=uuid.uuid4().hex, ts=ts, **fields)

    def chained(self, seq: int, prev_hash: str) -> "LogRecord":
        record = replace(self, seq=seq, prev_hash=prev_hash)
        return replace(record, hash=record_hash(asdict(record), prev_hash))

    def row(self) -> tuple:
        return tuple(int(v) if isinstance(v, bool) else v for v in (getattr(self, c) for c in COLUMNS + CHAIN_COLUMNS))


class AccessLog:
    def __init__(
        self,
        db: Optional[Database],
        spool: Path,
        state: Optional[Path] = None,
        key: Optional[Ed25519PrivateKey] = None,
        writer: bool = True,
        checkpoint_every: int = 10,
        checkpoint_s: float = 60.0,
    ) -> None:
        self.db = db
        self.spool = spool
        self.head_path = state / "accesslog-head.json" if state is not None else None
        self.key = key
        self.writer = writer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_s = checkpoint_s
        self._memory: List[LogRecord] = []
        self._lock = threading.Lock()
        self._db_lost = False
        self.alarm: Optional[Dict[str, Any]] = None
        self._seq, self._hash = 0, GENESIS
        self._checkpointed_seq = 0
        self._checkpoint_at = time.monotonic()
        if writer:
            with self._lock:
                self._open_chain()
                self._flush_locked()

    # ---- state ---------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records not yet in the database (spooled or in memory)."""
        with self._lock:
            return len(self._memory) + len(self._read_spool())

    @property
    def unsaved(self) -> List[LogRecord]:
        """Records held only in memory: they would be lost if the process ended now."""
        with self._lock:
            return list(self._memory)

    @property
    def problem(self) -> Optional[str]:
        """What keeps the log from being whole and durable right now, for the screen and ``doctor``."""
        if self.alarm:
            return "access log alarm: {} (dabai-kiosk log verify; then dabai-kiosk log acknowledge)".format(
                self.alarm.get("text") or self.alarm.get("reason"))
        if self._memory:
            return "access log: {} record(s) held in memory: neither {} nor {} can be written".format(
                len(self._memory), self.db.path if self.db is not None else "the database", self.spool)
        return None

    # ---- writing -------------------------------------------------------------------------------

    def append(self, decision: Decision, ts: Optional[float] = None, durable: bool = False) -> Optional[LogRecord]:
        """Chain and store one record. With ``durable`` it is stored on disk (database or spool, fsync'd)
        or not at all: None means nothing was kept and the caller must not act on the decision."""
        if not self.writer:
            raise RuntimeError("this access log was opened read-only")
        with self._lock:
            self._db_usable()  # a database lost since the last record raises its alarm (a record) first
            self._flush_locked()
            record = LogRecord.of(decision, time.time() if ts is None else ts).chained(self._seq + 1, self._hash)
            if not self._spooled() and self._insert([record]):
                stored = True
            else:
                stored = self._to_spool(record)
            if not stored:
                if durable:
                    return None  # the chain does not advance: the next record takes this one's place
                log.error("access log: record %d held in memory until the disk takes it", record.seq)
                self._memory.append(record)
            self._seq, self._hash = record.seq or 0, record.hash or GENESIS
            self._maybe_checkpoint()
            return record

    def flush(self) -> bool:
        """Move waiting records into the database and sign a checkpoint when one is due; True when nothing
        is left waiting. The kiosk calls it on its timer."""
        if not self.writer:
            return True
        with self._lock:
            done = self._flush_locked()
            self._maybe_checkpoint()
            return done

    def checkpoint(self) -> Optional[Checkpoint]:
        """Sign the newest record now (e.g. at shutdown)."""
        if not self.writer:
            return None
        with self._lock:
            return self._checkpoint_locked()

    def acknowledge(self, who: str = "operator") -> bool:
        """Record that a person has seen the alarm; the gate may open again. False when there was none."""
        with self._lock:
            if not self.alarm:
                return False
            reason = str(self.alarm.get("reason"))
            self.alarm = None
        self.append(Decision(ALARM, "acknowledged", pass_reason=reason, resident_name=who[:64]))
        with self._lock:
            self._checkpoint_locked()
        return True

    def close(self) -> bool:
        """Flush and checkpoint; True when every record is on disk."""
        if not self.writer:
            return True
        self.flush()
        self.checkpoint()
        return not self.unsaved  # a record in the spool is on disk; one only in memory is not

    # ---- internals (hold the lock) -------------------------------------------------------------

    def _open_chain(self) -> None:
        """Find the newest record (database, then spool) and compare it with the remembered head."""
        last = self._last_in_db()
        spooled = [r for r in self._read_spool() if r.seq is not None]
        if spooled and (last is None or (spooled[-1].seq or 0) > last[0]):
            last = (spooled[-1].seq or 0, spooled[-1].hash or GENESIS)
        if last is not None:
            self._seq, self._hash = last
        self._checkpointed_seq = self._seq
        if self.head_path is None:
            return
        head = read_head(self.head_path)
        db_id = self.db.db_id if self.db is not None else ""
        if head is None:  # the first start (or a kiosk from before the chain): remember where the log begins
            self._write_head(db_id, self._last_checkpoint())
            return
        self.alarm = head.alarm
        cp = head.checkpoint
        lost = None
        if cp is not None and self._seq < cp.seq:
            what = "missing" if self.db is not None and self.db.created else "emptied or restored from an older copy"
            lost = ("database_lost", "the database {} was {}: records {}-{} are gone".format(
                self.db.path if self.db is not None else "", what, self._seq + 1, cp.seq))
        elif cp is not None and db_id != head.db_id and self._hash_at(cp.seq) != cp.hash:
            lost = ("database_replaced", "the database {} was replaced by another one".format(
                self.db.path if self.db is not None else ""))
        if lost is not None:
            assert cp is not None
            if self._seq < cp.seq:  # carry on from what the kiosk remembers, so verify names the gap
                self._seq, self._hash = cp.seq, cp.hash
            if self.alarm:  # already raised (e.g. deleted while running) and not yet acknowledged
                self._write_head(db_id, cp)
            else:
                self._raise_alarm(lost[0], lost[1], db_id, cp)
        elif db_id != head.db_id:
            self._write_head(db_id, cp)

    def _raise_alarm(self, reason: str, text: str, db_id: str, cp: Optional[Checkpoint]) -> None:
        log.error("access log ALARM: %s", text)
        self.alarm = {"reason": reason, "detected_at": time.time(), "text": text}
        self._write_head(db_id, cp)
        record = LogRecord.of(Decision(ALARM, reason), time.time()).chained(self._seq + 1, self._hash)
        if not (self._insert([record]) if not self._spooled() else False) and not self._to_spool(record):
            self._memory.append(record)
        self._seq, self._hash = record.seq or 0, record.hash or GENESIS

    def _write_head(self, db_id: str, cp: Optional[Checkpoint]) -> None:
        if self.head_path is None:
            return
        try:
            write_head(self.head_path, Head(db_id, cp, self.alarm))
        except OSError as exc:
            log.error("access log: cannot write %s: %s", self.head_path, exc)

    def checkpoint_upto(self, seq: int) -> Optional[Checkpoint]:
        """The newest signed checkpoint at or before record ``seq`` (what the fleet's uplink hands the office with
        the records it holds); None when there is none."""
        if self.db is None:
            return None
        try:
            rows = self.db.query("SELECT * FROM log_checkpoints WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (int(seq),))
        except sqlite3.Error:
            return None
        return Checkpoint(rows[0]["kiosk"], rows[0]["seq"], rows[0]["hash"], rows[0]["ts"], rows[0]["sig"]) \
            if rows else None

    def _last_checkpoint(self) -> Optional[Checkpoint]:
        if self.db is None:
            return None
        try:
            rows = self.db.query("SELECT * FROM log_checkpoints ORDER BY seq DESC LIMIT 1")
        except sqlite3.Error:
            return None
        return Checkpoint(rows[0]["kiosk"], rows[0]["seq"], rows[0]["hash"], rows[0]["ts"], rows[0]["sig"]) \
            if rows else None

    def _last_in_db(self) -> Optional[Tuple[int, str]]:
        if self.db is None:
            return None
        try:
            rows = self.db.query("SELECT seq, hash FROM access_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
        except sqlite3.Error as exc:
            log.error("access log: cannot read the database: %s", exc)
            return None
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def _hash_at(self, seq: int) -> Optional[str]:
        if self.db is None:
            return None
        try:
            rows = self.db.query("SELECT hash FROM access_log WHERE seq = ?", (seq,))
        except sqlite3.Error:
            return None
        return str(rows[0][0]) if rows else None

    def _spooled(self) -> bool:
        return bool(self._memory) or self.spool.exists()

    def _db_usable(self) -> bool:
        if self.db is None or self._db_lost:
            return False
        if not self.db.still_there():
            return self._db_vanished()
        return True

    def _db_vanished(self) -> bool:
        """The database file was deleted or replaced under the kiosk. Its contents are still readable through
        the open connection: a deleted file is put back in place (and the kiosk carries on with it), a replaced
        one is rescued beside it and the records go to the spool. Either way it is an alarm."""
        assert self.db is not None
        path = self.db.path
        if not path.exists():
            try:
                self.db.restore_deleted()
            except (OSError, sqlite3.Error) as exc:
                log.error("access log: cannot restore the deleted database: %s", exc)
            else:
                self._raise_alarm("database_deleted", "the database {} was deleted while the kiosk ran; it was "
                                  "restored from the kiosk's open connection".format(path), self.db.db_id,
                                  self._last_checkpoint())
                return True
        rescued = path.with_name("{}.rescued-{}".format(path.name, time.strftime("%Y%m%d-%H%M%S")))
        try:
            self.db.rescue(rescued)
            where = "its contents were saved to {}".format(rescued)
        except (OSError, sqlite3.Error) as exc:
            where = "its contents could not be saved ({})".format(exc)
        self._db_lost = True
        self._raise_alarm("database_replaced", "the database {} was replaced while the kiosk ran; {}; records go to "
                          "{}".format(path, where, self.spool), "", self._last_checkpoint())
        return False

    def _insert(self, records: List[LogRecord]) -> bool:
        if not self._db_usable():
            return False
        assert self.db is not None
        names = COLUMNS + CHAIN_COLUMNS
        sql = "INSERT OR IGNORE INTO access_log({}) VALUES ({})".format(", ".join(names), ", ".join("?" * len(names)))
        try:
            self.db.executemany(sql, [r.row() for r in records])
            return True
        except sqlite3.Error as exc:
            log.error("access log: database write failed (%s); keeping the record in %s", exc, self.spool)
            return False

    def _to_spool(self, record: LogRecord) -> bool:
        try:
            with open(self.spool, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            return True
        except OSError as exc:
            log.error("access log: spool write failed (%s)", exc)
            return False

    def _read_spool(self) -> List[LogRecord]:
        records = []
        try:
            with open(self.spool, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        records.append(LogRecord(**json.loads(line)))
                    except (ValueError, TypeError):
                        log.error("access log: unreadable spool line kept aside: %r", line[:200])
                        self._keep_aside(line)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("access log: cannot read spool %s: %s", self.spool, exc)
        return records

    def _keep_aside(self, line: str) -> None:
        try:
            with open(str(self.spool) + ".bad", "a", encoding="utf-8") as fh:
                fh.write(line if line.endswith("\n") else line + "\n")
        except OSError:
            pass

    def _flush_locked(self) -> bool:
        if not self._spooled():
            return True
        waiting = self._read_spool()
        if not self._insert(waiting + self._memory):
            # The database cannot take them: at least move memory-held records to the spool if it can.
            while self._memory and self._to_spool(self._memory[0]):
                self._memory.pop(0)
            return False
        self._memory = []
        try:
            self.spool.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # harmless: the uid makes a second insert a no-op
            log.warning("access log: could not remove spool %s: %s", self.spool, exc)
        return True

    def _maybe_checkpoint(self) -> None:
        due = self._seq - self._checkpointed_seq >= self.checkpoint_every or \
            (self._seq > self._checkpointed_seq and time.monotonic() - self._checkpoint_at >= self.checkpoint_s) or \
            (self._seq > 0 and self._checkpointed_seq == 0)
        if due:
            self._checkpoint_locked()

    def _checkpoint_locked(self) -> Optional[Checkpoint]:
        """Sign the newest record once it is in the database (a spooled tail is signed after it lands)."""
        self._checkpoint_at = time.monotonic()
        if self.key is None or self._seq == 0 or self._spooled() or not self._db_usable():
            return None
        assert self.db is not None
        cp = sign_checkpoint(self.key, self._seq, self._hash, time.time())
        try:
            self.db.execute("INSERT OR REPLACE INTO log_checkpoints(seq, hash, ts, kiosk, sig) VALUES (?, ?, ?, ?, ?)",
                            (cp.seq, cp.hash, cp.ts, cp.kiosk, cp.sig))
        except sqlite3.Error as exc:
            log.error("access log: cannot store a checkpoint: %s", exc)
            return None
        self._checkpointed_seq = cp.seq
        self._write_head(self.db.db_id, cp)
        return cp

    # ---- reading -------------------------------------------------------------------------------

    def verify(self, public_key: Any) -> Verdict:
        """The chain of the database and the spool, its checkpoints and the remembered head."""
        rows: List[Dict[str, Any]] = []
        checkpoints: List[Checkpoint] = []
        if self.db is not None:
            names = ", ".join(("seq", "prev_hash", "hash") + COLUMNS)
            rows = [dict(r) for r in self.db.query(
                "SELECT {} FROM access_log ORDER BY seq IS NULL DESC, seq, id".format(names))]
            checkpoints = [Checkpoint(r["kiosk"], r["seq"], r["hash"], r["ts"], r["sig"])
                           for r in self.db.query("SELECT * FROM log_checkpoints ORDER BY seq")]
        in_db = {r["uid"] for r in rows}
        rows += [asdict(r) for r in self._read_spool() if r.uid not in in_db]
        head = read_head(self.head_path) if self.head_path is not None else None
        return verify_chain(rows, checkpoints, public_key, head)

    def list(
        self,
        limit: int = 50,
        outcome: Optional[str] = None,
        since: Optional[float] = None,
        until: Optional[float] = None,
        reason: Optional[str] = None,
        resident: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Newest first. ``since`` inclusive, ``until`` exclusive (unix seconds); ``reason`` matches the
        decision's or the pass's reason; ``resident`` is an id or part of a name (case-insensitive)."""
        if self.db is None:
            return []
        where, params = [], []  # type: List[str], List[Any]
        if outcome:
            where.append("outcome = ?")
            params.append(outcome)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts < ?")
            params.append(until)
        if reason:
            where.append("(reason = ? OR pass_reason = ?)")
            params += [reason, reason]
        who = (resident or "").strip()
        if who:
            where.append("(CAST(resident_id AS TEXT) = ? OR instr(lower(resident_name), lower(?)) > 0)")
            params += [who, who]
        sql = "SELECT {} FROM access_log {} ORDER BY ts DESC, id DESC LIMIT ?".format(
            ", ".join(COLUMNS + ("seq",)), ("WHERE " + " AND ".join(where)) if where else ""
        )
        rows = self.db.query(sql, params + [limit])
        return [dict(r) for r in rows]

    @property
    def head(self) -> int:
        """The sequence number of the last record made (in the database, the spool or memory); 0 before any."""
        return int(self._seq or 0)

    def chained_after(self, seq: int, limit: int = 500) -> List[Dict[str, Any]]:
        """Records with a sequence number above ``seq``, oldest first, with their chain fields (what the fleet's
        uplink streams to the office; read-only, so any process may ask)."""
        if self.db is None:
            return []
        rows = self.db.query("SELECT {} FROM access_log WHERE seq > ? ORDER BY seq LIMIT ?".format(
            ", ".join(COLUMNS + CHAIN_COLUMNS)), (int(seq), int(limit)))
        return [dict(r) for r in rows]

    def export_csv(self, since: Optional[float] = None, **filters: Any) -> str:
        """Every record matching the filters of :meth:`list`, oldest first, as CSV."""
        rows = list(reversed(self.list(limit=10**9, since=since, **filters)))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("time",) + COLUMNS + ("seq",))
        for r in rows:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
            writer.writerow((stamp,) + tuple(r[c] for c in COLUMNS + ("seq",)))
        return out.getvalue()
