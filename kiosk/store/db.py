"""The kiosk's one SQLite database: residents, passes and the access log (WAL mode)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable, List, Tuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS residents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS passes (
    serial       INTEGER PRIMARY KEY AUTOINCREMENT,
    resident_id  INTEGER NOT NULL REFERENCES residents(id),
    issued_at    REAL NOT NULL,
    expires_at   REAL NOT NULL,
    revoked_at   REAL
);
CREATE TABLE IF NOT EXISTS access_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    uid            TEXT NOT NULL UNIQUE,
    ts             REAL NOT NULL,
    outcome        TEXT NOT NULL,
    reason         TEXT NOT NULL,
    resident_id    INTEGER,
    resident_name  TEXT,
    mask           TEXT,
    pass_reason    TEXT,
    pass_serial    INTEGER,
    intent         TEXT,
    gate_opened    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_ts ON access_log(ts);
"""


class Database:
    """A thread-safe connection; every write is its own transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=5.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one statement in its own transaction; returns lastrowid."""
        with self._lock:
            cur = self._conn.execute(sql, tuple(params))
            return int(cur.lastrowid or 0)

    def query(self, sql: str, params: Iterable[Any] = ()) -> List[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, tuple(params)))

    def executemany(self, sql: str, rows: List[Tuple[Any, ...]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()
