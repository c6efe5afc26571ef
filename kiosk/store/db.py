"""The kiosk's one SQLite database: residents, passes and the access log (WAL mode).

Opening it says plainly what is wrong instead of raising sqlite's own errors: a file that is not a
database, a damaged one, another program's database, a read-only home, a full disk, a lock held by
another writer (:class:`StoreError`). Writes wait at most ``busy_timeout_s`` for a lock, so a stuck
writer elsewhere cannot stall the gate's decisions. Every commit is fsync'd (``synchronous=FULL``):
an access-log record is on disk before the gate it records is opened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Tuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS dabai_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS residents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at  REAL NOT NULL,
    archived_at REAL
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
    gate_opened    INTEGER NOT NULL,
    seq            INTEGER,
    prev_hash      TEXT,
    hash           TEXT
);
CREATE INDEX IF NOT EXISTS access_log_ts ON access_log(ts);
CREATE TABLE IF NOT EXISTS log_checkpoints (
    seq    INTEGER PRIMARY KEY,
    hash   TEXT NOT NULL,
    ts     REAL NOT NULL,
    kiosk  TEXT NOT NULL,
    sig    TEXT NOT NULL
);
"""
OUR_TABLES = {"residents", "passes", "access_log"}
_CHAIN_COLUMNS = (("seq", "INTEGER"), ("prev_hash", "TEXT"), ("hash", "TEXT"))


class StoreError(RuntimeError):
    """The database cannot be used; the message says what is wrong and how to fix it."""


def describe_sqlite_error(path: Path, exc: BaseException) -> str:
    """One sentence a person can act on, for sqlite's terse error texts."""
    text = str(exc)
    low = text.lower()
    if "not a database" in low or "file is encrypted" in low:
        return "{} is not a SQLite database (damaged, truncated or another kind of file): restore it from a " \
               "backup or move it away".format(path)
    if "malformed" in low or "corrupt" in low:
        return "{} is damaged ({}): restore it from a backup".format(path, text)
    if "readonly" in low or "read-only" in low:
        return "{} cannot be written (read-only file or folder): check its owner and permissions".format(path)
    if "unable to open" in low:
        return "cannot open {} ({}): does its folder exist and is it writable by this user?".format(path, text)
    if "full" in low:
        return "the disk holding {} is full: free some space".format(path)
    if "locked" in low or "busy" in low:
        return "{} is locked by another program: stop it (another kiosk process? a sqlite3 shell?)".format(path)
    if "disk i/o" in low:
        return "reading or writing {} failed with an I/O error (failing storage?)".format(path)
    return "database {}: {}".format(path, text)


class Database:
    """A thread-safe connection; every write is its own transaction."""

    def __init__(self, path: Path, busy_timeout_s: float = 5.0, check: bool = False) -> None:
        self.path = path
        self.created = False  # True when this open made a new, empty database
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError("cannot create the data folder {}: {}".format(path.parent, exc.strerror or exc)) from None
        if path.is_dir():
            raise StoreError("{} is a folder, not a database: move it away".format(path))
        self._lock = threading.Lock()
        self._timeout = busy_timeout_s
        try:
            self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=busy_timeout_s,
                                         isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(describe_sqlite_error(path, exc)) from None
        try:
            self._open(check)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(describe_sqlite_error(path, exc)) from None
        except StoreError:
            self._conn.close()
            raise
        self.identity = self._file_identity()

    def _open(self, check: bool) -> None:
        conn = self._conn
        conn.row_factory = sqlite3.Row
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and not tables & OUR_TABLES:
            raise StoreError("{} is another program's database (tables: {}), not the kiosk's: point the data home "
                             "elsewhere or move the file away".format(self.path, ", ".join(sorted(tables)[:5])))
        self.created = not tables
        if check:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise StoreError("{} is damaged ({}): restore it from a backup".format(self.path, "; ".join(problems)))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the gate it records opens
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(access_log)")}
        for name, kind in _CHAIN_COLUMNS:  # databases from before the chain: add its columns
            if name not in columns:
                conn.execute("ALTER TABLE access_log ADD COLUMN {} {}".format(name, kind))
        if "archived_at" not in {row[1] for row in conn.execute("PRAGMA table_info(residents)")}:
            conn.execute("ALTER TABLE residents ADD COLUMN archived_at REAL")  # databases from before archiving
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS access_log_seq ON access_log(seq)")
        if not list(conn.execute("SELECT value FROM dabai_meta WHERE key = 'db_id'")):
            conn.execute("INSERT INTO dabai_meta(key, value) VALUES ('db_id', ?)", (uuid.uuid4().hex,))

    def _file_identity(self) -> Optional[Tuple[int, int]]:
        try:
            st = os.stat(str(self.path))
        except OSError:
            return None
        return st.st_dev, st.st_ino

    @property
    def db_id(self) -> str:
        """A random id given to this database when it was made: a copy has it too, a new one does not."""
        rows = self.query("SELECT value FROM dabai_meta WHERE key = 'db_id'")
        return str(rows[0][0]) if rows else ""

    def still_there(self) -> bool:
        """False once the file this connection writes to was deleted or replaced under it (writes would go
        to a file nobody can open again)."""
        return self.identity is not None and self._file_identity() == self.identity

    def rescue(self, dest: Path) -> None:
        """Copy what this connection still sees (also a file deleted under it) into ``dest``, atomically."""
        tmp = dest.with_name(dest.name + ".rescue-tmp")
        with self._lock:
            target = sqlite3.connect(str(tmp))
            try:
                self._conn.backup(target)
            finally:
                target.close()
        os.replace(str(tmp), str(dest))

    def restore_deleted(self) -> None:
        """The file was deleted while this connection had it open: put its contents back at ``path`` and carry
        on there. Closing the old connection first lets sqlite fold and remove the deleted file's WAL."""
        tmp = self.path.with_name(self.path.name + ".rescue-tmp")
        self.rescue(tmp)
        with self._lock:
            self._conn.close()
            os.replace(str(tmp), str(self.path))
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=self._timeout,
                                         isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        self.identity = self._file_identity()

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
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def transaction(self, write: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``write(connection)`` as one transaction: all of it is committed, or (on any exception) none."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = write(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return result

    def close(self) -> None:
        with self._lock:
            self._conn.close()
