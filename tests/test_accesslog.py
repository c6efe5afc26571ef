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


# ---- the chain, checkpoints and alarms -------------------------------------------------------------

import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from kiosk.store.chain import load_or_create_kiosk_key  # noqa: E402
from kiosk.store.db import StoreError  # noqa: E402


def open_log(tmp_path, **kw):
    """A writer's log as the kiosk opens it: database, spool, state folder and the kiosk's key."""
    key = load_or_create_kiosk_key(tmp_path / "keys" / "kiosk.key")
    db = Database(tmp_path / "dabai.db")
    return AccessLog(db, tmp_path / "spool.jsonl", state=tmp_path / "state", key=key, **kw), key


def verdict_of(tmp_path):
    log, key = open_log(tmp_path, writer=False)
    try:
        return log.verify(key.public_key())
    finally:
        log.db.close()


def fill(tmp_path, n=25, **kw):
    log, key = open_log(tmp_path, **kw)
    for i in range(n):
        log.append(DENY if i % 2 else GRANT, ts=1000.0 + i)
    log.close()
    log.db.close()


def raw(tmp_path):
    import sqlite3

    return sqlite3.connect(str(tmp_path / "dabai.db"), isolation_level=None)


def test_an_intact_log_verifies(tmp_path):
    fill(tmp_path)
    verdict = verdict_of(tmp_path)
    assert verdict.ok and verdict.records == 25 and verdict.last_checkpoint == 25, verdict.problems


def test_an_edited_record_is_named(tmp_path):
    fill(tmp_path)
    with raw(tmp_path) as con:
        con.execute("UPDATE access_log SET outcome = 'granted', gate_opened = 1 WHERE seq = 8")
    verdict = verdict_of(tmp_path)
    assert not verdict.ok and verdict.first_bad == 8 and "edited" in verdict.problems[0]


def test_an_edit_with_recomputed_hashes_fails_at_the_signed_checkpoint(tmp_path):
    from kiosk.store.chain import record_hash

    fill(tmp_path)
    con = raw(tmp_path)
    con.row_factory = __import__("sqlite3").Row
    rows = [dict(r) for r in con.execute("SELECT * FROM access_log ORDER BY seq")]
    rows[7]["outcome"] = "granted"
    prev = rows[6]["hash"]
    for row in rows[7:]:  # an attacker who knows the scheme rewrites the rest of the chain
        row["prev_hash"], row["hash"] = prev, record_hash(row, prev)
        prev = row["hash"]
        con.execute("UPDATE access_log SET outcome = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                    (row["outcome"], row["prev_hash"], row["hash"], row["seq"]))
    con.close()
    verdict = verdict_of(tmp_path)
    # checkpoints sign records 1, 11, 21 and 25: the rewrite is caught at the first one after the edit
    assert not verdict.ok and verdict.first_bad == 11 and "records 2-11 were rewritten" in verdict.problems[0]


def test_a_deleted_record_is_named(tmp_path):
    fill(tmp_path)
    with raw(tmp_path) as con:
        con.execute("DELETE FROM access_log WHERE seq = 12")
    verdict = verdict_of(tmp_path)
    assert not verdict.ok and verdict.first_bad == 12 and "deleted" in verdict.problems[0]


def test_reordered_records_are_named(tmp_path):
    fill(tmp_path)
    with raw(tmp_path) as con:  # swap the numbers of two records
        con.execute("UPDATE access_log SET seq = -1 WHERE seq = 5")
        con.execute("UPDATE access_log SET seq = 5 WHERE seq = 6")
        con.execute("UPDATE access_log SET seq = 6 WHERE seq = -1")
    verdict = verdict_of(tmp_path)
    assert not verdict.ok and verdict.first_bad == 5


def test_a_tail_cut_past_the_last_checkpoint_is_caught(tmp_path):
    fill(tmp_path, n=25)
    with raw(tmp_path) as con:
        con.execute("DELETE FROM access_log WHERE seq > 17")
        con.execute("DELETE FROM log_checkpoints WHERE seq > 17")  # even with its checkpoints gone: the head remembers
    verdict = verdict_of(tmp_path)
    assert not verdict.ok and verdict.first_bad == 18 and "25" in " ".join(verdict.problems)


def test_an_emptied_database_is_an_alarm_not_a_fresh_start(tmp_path):
    fill(tmp_path, n=12)
    os.truncate(str(tmp_path / "dabai.db"), 0)
    for suffix in ("-wal", "-shm"):
        if (tmp_path / ("dabai.db" + suffix)).exists():
            os.unlink(str(tmp_path / ("dabai.db" + suffix)))
    log, key = open_log(tmp_path)
    assert log.alarm and log.alarm["reason"] == "database_lost" and "1-12" in log.alarm["text"]
    record = log.append(GRANT)
    assert record.seq == 14  # 13 is the alarm itself: the chain carries on from what the kiosk remembers
    log.close()
    log.db.close()
    verdict = verdict_of(tmp_path)
    assert not verdict.ok and verdict.first_bad == 1
    again, _ = open_log(tmp_path)  # the alarm lasts across restarts until acknowledged
    assert again.alarm and again.acknowledge("test")
    again.close()
    again.db.close()
    assert not open_log(tmp_path)[0].alarm


def test_an_older_copy_of_the_database_is_an_alarm(tmp_path):
    fill(tmp_path, n=10)
    shutil.copy(str(tmp_path / "dabai.db"), str(tmp_path / "backup.db"))
    fill(tmp_path, n=10)
    os.replace(str(tmp_path / "backup.db"), str(tmp_path / "dabai.db"))
    log, _ = open_log(tmp_path)
    assert log.alarm and log.alarm["reason"] == "database_lost" and "11-20" in log.alarm["text"]


def test_a_database_deleted_while_running_is_put_back_and_raises_an_alarm(tmp_path):
    log, key = open_log(tmp_path)
    log.db.execute("INSERT INTO residents(name, unit, created_at) VALUES ('张三', '3-201', 0)")
    log.append(GRANT, ts=1.0)
    os.unlink(str(tmp_path / "dabai.db"))
    assert log.append(DENY, ts=2.0, durable=True) is not None
    assert log.alarm and log.alarm["reason"] == "database_deleted"
    assert (tmp_path / "dabai.db").exists()  # restored from the connection that still had it open
    log.append(DENY, ts=3.0)
    log.close()
    log.db.close()
    again, _ = open_log(tmp_path)  # the alarm lasts; nothing was lost, residents included
    assert again.alarm and again.pending == 0
    assert [r["ts"] for r in again.list() if r["outcome"] != "alarm"] == [3.0, 2.0, 1.0]
    assert again.db.query("SELECT name FROM residents")[0][0] == "张三"
    assert again.verify(key.public_key()).problems == ["alarm: " + again.alarm["text"]]


def test_a_database_replaced_while_running_is_rescued_and_records_go_to_the_spool(tmp_path):
    log, key = open_log(tmp_path)
    log.append(GRANT, ts=1.0)
    os.replace(str(tmp_path / "dabai.db"), str(tmp_path / "old.db"))
    Database(tmp_path / "dabai.db").close()  # someone puts another database in its place
    assert log.append(DENY, ts=2.0, durable=True) is not None
    assert log.alarm and log.alarm["reason"] == "database_replaced"
    rescued = list(tmp_path.glob("dabai.db.rescued-*"))
    assert len(rescued) == 1 and log.pending >= 2


def test_a_full_disk_refuses_a_durable_record_and_keeps_the_others(tmp_path):
    db = BrokenDatabase(tmp_path / "db.sqlite")
    log = AccessLog(db, tmp_path / "no-such-dir" / "spool.jsonl")
    assert log.append(GRANT, durable=True) is None and log.pending == 0  # not kept: the gate must not open
    log.append(DENY, ts=5.0)
    assert log.pending == 1 and log.problem and "memory" in log.problem
    db.broken = False  # space returns
    assert log.flush() and log.pending == 0 and [r["ts"] for r in log.list()] == [5.0]


def test_a_locked_database_does_not_stall_a_decision(tmp_path):
    Database(tmp_path / "db.sqlite").close()
    other = raw_path = tmp_path / "db.sqlite"
    import sqlite3

    other = sqlite3.connect(str(raw_path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        log = AccessLog(Database(raw_path, busy_timeout_s=0.1), tmp_path / "spool.jsonl")
        t0 = time.monotonic()
        assert log.append(GRANT, durable=True) is not None
        assert time.monotonic() - t0 < 1.0 and log.pending == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert log.flush() and log.pending == 0


@pytest.mark.parametrize("content,words", [
    (b"\x00" * 4096, "not a SQLite database"),
    (os.urandom(8192), "not a SQLite database"),
])
def test_a_garbage_database_gets_a_clear_refusal(tmp_path, content, words):
    (tmp_path / "dabai.db").write_bytes(content)
    with pytest.raises(StoreError, match=words):
        Database(tmp_path / "dabai.db", check=True)


def test_a_truncated_database_gets_a_clear_refusal(tmp_path):
    fill(tmp_path, n=400)
    with raw(tmp_path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (tmp_path / "dabai.db").stat().st_size
    os.truncate(str(tmp_path / "dabai.db"), size // 2)
    with pytest.raises(StoreError, match="damaged|not a SQLite"):
        Database(tmp_path / "dabai.db", check=True)


def test_a_foreign_database_is_not_taken_over(tmp_path):
    with raw(tmp_path) as con:
        con.execute("CREATE TABLE photos (id INTEGER, path TEXT)")
    with pytest.raises(StoreError, match="another program's database"):
        Database(tmp_path / "dabai.db")
    with raw(tmp_path) as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["photos"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_a_read_only_home_gets_a_clear_refusal(tmp_path):
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="cannot open|read-only"):
            Database(home / "dabai.db")
    finally:
        home.chmod(0o755)
