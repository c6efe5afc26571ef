"""The access log keeps every record, even when the database cannot take it."""

from __future__ import annotations

import sqlite3

from kiosk.core.events import Decision
from kiosk.store.accesslog import AccessLog
from kiosk.store.db import Database

GRANT = Decision("granted", "ok", mask="with_mask", pass_reason="ok", resident_id=1, resident_name="张三",
                 pass_serial=3, intent="enter", gate_opened=True)
DENY = Decision("denied", "no_mask", mask="without_mask")


class BrokenDatabase(Database):
    """A database whose writes fail, like a full disk or a corrupt file."""

    broken = True

    def executemany(self, sql, rows):
        if self.broken:
            raise sqlite3.OperationalError("database or disk is full")
        return super().executemany(sql, rows)


def test_append_list_and_export(tmp_path):
    log = AccessLog(Database(tmp_path / "db.sqlite"), tmp_path / "spool.jsonl")
    log.append(GRANT, ts=1000.0)
    log.append(DENY, ts=1001.0)
    rows = log.list()
    assert [r["outcome"] for r in rows] == ["denied", "granted"]
    assert rows[1]["resident_name"] == "张三" and rows[1]["gate_opened"] == 1 and rows[1]["intent"] == "enter"
    assert log.list(outcome="granted")[0]["pass_serial"] == 3
    csv_text = log.export_csv()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("time,uid,ts,outcome") and len(lines) == 3 and "张三" in lines[1]


def test_database_in_wal_mode(tmp_path):
    db = Database(tmp_path / "db.sqlite")
    assert db.query("PRAGMA journal_mode")[0][0] == "wal"


def test_records_survive_a_failing_database_and_arrive_in_order(tmp_path):
    db = BrokenDatabase(tmp_path / "db.sqlite")
    log = AccessLog(db, tmp_path / "spool.jsonl")
    log.append(GRANT, ts=1.0)
    log.append(DENY, ts=2.0)
    assert log.pending == 2 and (tmp_path / "spool.jsonl").exists()
    db.broken = False
    log.append(Decision("abandoned", "left"), ts=3.0)
    assert log.pending == 0 and not (tmp_path / "spool.jsonl").exists()
    assert [r["ts"] for r in log.list()] == [3.0, 2.0, 1.0]


def test_spool_left_by_a_crash_is_recovered_once(tmp_path):
    db = BrokenDatabase(tmp_path / "db.sqlite")
    log = AccessLog(db, tmp_path / "spool.jsonl")
    log.append(GRANT, ts=1.0)
    # The kiosk restarts with a working database: the spooled record goes in, exactly once.
    again = AccessLog(Database(tmp_path / "db.sqlite"), tmp_path / "spool.jsonl")
    again.flush()
    assert len(again.list()) == 1 and again.pending == 0


def test_no_database_and_no_spool_keeps_records_in_memory(tmp_path):
    log = AccessLog(None, tmp_path / "missing-dir" / "spool.jsonl")
    log.append(GRANT)
    assert log.pending == 1


def test_list_filters_by_dates_reason_and_resident(tmp_path):
    log = AccessLog(Database(tmp_path / "a.db"), tmp_path / "spool.jsonl")
    log.append(Decision("granted", "ok", pass_reason="ok", resident_id=7, resident_name="Zhang San"), ts=100.0)
    log.append(Decision("denied", "pass_invalid", pass_reason="expired", resident_id=8, resident_name="李四"), ts=200.0)
    log.append(Decision("denied", "no_mask"), ts=300.0)
    assert [r["ts"] for r in log.list(since=100.0, until=300.0)] == [200.0, 100.0]
    assert [r["ts"] for r in log.list(reason="expired")] == [200.0]  # the pass's reason counts too
    assert [r["ts"] for r in log.list(resident="zhang")] == [100.0]
    assert [r["ts"] for r in log.list(resident="8")] == [200.0]
    assert log.list(resident="x' OR 1=1 --") == []
    csv_text = log.export_csv(outcome="denied", until=250.0)
    assert len(csv_text.strip().splitlines()) == 2 and "李四" in csv_text
