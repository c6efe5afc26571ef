"""The access log: every decision, appended to SQLite, never lost.

If the database cannot take a record (disk full, file locked or broken), the record goes to a
JSON-lines spool file next to it, and if even that fails it is held in memory; every later
append first moves what is waiting into the database, in order. Records carry a unique id,
so a record written twice is stored once.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from kiosk.core.events import Decision
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

    @classmethod
    def of(cls, decision: Decision, ts: float) -> "LogRecord":
        fields = asdict(decision)
        return cls(uid=uuid.uuid4().hex, ts=ts, **fields)

    def row(self) -> tuple:
        return tuple(int(v) if isinstance(v, bool) else v for v in (getattr(self, c) for c in COLUMNS))


class AccessLog:
    def __init__(self, db: Optional[Database], spool: Path) -> None:
        self.db = db
        self.spool = spool
        self._memory: List[LogRecord] = []
        self._lock = threading.Lock()
        self.flush()

    @property
    def pending(self) -> int:
        """Records not yet in the database (spooled or in memory)."""
        with self._lock:
            return len(self._memory) + len(self._read_spool())

    def append(self, decision: Decision, ts: Optional[float] = None) -> LogRecord:
        record = LogRecord.of(decision, time.time() if ts is None else ts)
        with self._lock:
            self._flush_locked()
            if not self._spooled() and self._insert([record]):
                return record
            self._to_spool(record)
        return record

    def flush(self) -> bool:
        """Move waiting records into the database; True when nothing is left waiting."""
        with self._lock:
            return self._flush_locked()

    # internals (hold the lock)

    def _spooled(self) -> bool:
        return bool(self._memory) or self.spool.exists()

    def _insert(self, records: List[LogRecord]) -> bool:
        if self.db is None:
            return False
        sql = "INSERT OR IGNORE INTO access_log({}) VALUES ({})".format(
            ", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))
        )
        try:
            self.db.executemany(sql, [r.row() for r in records])
            return True
        except sqlite3.Error as exc:
            log.error("access log: database write failed (%s); keeping the record in %s", exc, self.spool)
            return False

    def _to_spool(self, record: LogRecord) -> None:
        try:
            with open(self.spool, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            log.error("access log: spool write failed (%s); holding the record in memory", exc)
            self._memory.append(record)

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
            return False
        self._memory = []
        try:
            self.spool.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # harmless: the uid makes a second insert a no-op
            log.warning("access log: could not remove spool %s: %s", self.spool, exc)
        return True

    # reading

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
            ", ".join(COLUMNS), ("WHERE " + " AND ".join(where)) if where else ""
        )
        rows = self.db.query(sql, params + [limit])
        return [dict(r) for r in rows]

    def export_csv(self, since: Optional[float] = None, **filters: Any) -> str:
        """Every record matching the filters of :meth:`list`, oldest first, as CSV."""
        rows = list(reversed(self.list(limit=10**9, since=since, **filters)))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("time",) + COLUMNS)
        for r in rows:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
            writer.writerow((stamp,) + tuple(r[c] for c in COLUMNS))
        return out.getvalue()
