"""The operator's commands, run as a person would run them (in-process, same parser)."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from kiosk.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_resident_pass_and_log_round_trip(home, capsys, tmp_path):
    assert run(capsys, "residents", "add", "张三", "--unit", "3-201")[0] == 0
    assert run(capsys, "residents", "add", "李四", "--unit", "5-502")[0] == 0
    code, out, _ = run(capsys, "residents", "list", "--json")
    people = [json.loads(line) for line in out.splitlines()]
    assert [p["name"] for p in people] == ["张三", "李四"] and all(p["status"] == "active" for p in people)

    png = tmp_path / "pass.png"
    code, out, _ = run(capsys, "pass", "issue", "张三", "--out", str(png), "--print-token")
    assert code == 0 and png.exists()
    token = out.strip().splitlines()[-1]
    assert stat.S_IMODE(os.stat(home.private_key).st_mode) == 0o600
    # the printed pass carries what the operator screen's card carries: community, name and unit, number and expiry
    import cv2

    from kiosk.store.passes import pass_card_lines
    from kiosk.vision.qr import caption_band, render_qr

    lines = pass_card_lines("大白小区", "张三", "3-201", 1, time.time() + 365 * 86400)
    assert lines[1] == "张三  3-201" and lines[2].startswith("通行证 #1  有效期至 ")
    qr = render_qr(token, scale=8, border=4)
    bands = sum(caption_band(line, qr.shape[1], size=26 if i == 0 else 22).shape[0] for i, line in enumerate(lines))
    assert cv2.imread(str(png), cv2.IMREAD_GRAYSCALE).shape[0] == qr.shape[0] + bands

    code, out, _ = run(capsys, "pass", "verify", str(png), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["valid"] is True and result["reason"] == "ok" and result["resident"]["name"] == "张三"

    code, out, _ = run(capsys, "pass", "verify", token[:-6] + "AAAAAA", "--json")
    assert code == 1 and json.loads(out)["reason"] == "bad_signature"
    code, out, _ = run(capsys, "pass", "verify", "hello; DROP TABLE residents", "--json")
    assert code == 1 and json.loads(out)["reason"] == "malformed"

    assert run(capsys, "residents", "revoke", "张三")[0] == 0
    code, out, _ = run(capsys, "pass", "verify", token, "--json")
    assert json.loads(out)["reason"] == "resident_revoked"


def test_pass_verify_reports_expired(home, capsys):
    import time

    from kiosk.runtime.assemble import open_store
    from kiosk.store.passes import issue_pass, load_or_create_private_key

    run(capsys, "residents", "add", "王五", "--unit", "1-101")
    store = open_store(home)
    key = load_or_create_private_key(home.private_key, home.public_key)
    _, token = issue_pass(store.registry, key, 1, 1, time.time() - 10 * 86400)  # a day's pass, ten days ago
    store.close()
    code, out, _ = run(capsys, "pass", "verify", token, "--json")
    assert code == 1
    assert json.loads(out) == {"valid": False, "reason": "expired", "resident": {"id": 1, "name": "王五"}, "serial": 1}


def test_ambiguous_or_unknown_resident_is_a_clear_error(home, capsys):
    run(capsys, "residents", "add", "张三", "--unit", "1-1")
    run(capsys, "residents", "add", "张三", "--unit", "2-2")
    code, _, err = run(capsys, "pass", "issue", "张三")
    assert code == 2 and "give the id (1, 2)" in err
    code, _, err = run(capsys, "residents", "revoke", "nobody")
    assert code == 2 and "no resident named 'nobody'" in err
    code, _, err = run(capsys, "residents", "add", "", "--unit", "1-1")
    assert code == 2 and "name must not be empty" in err


def test_verify_without_a_key_says_how_to_fix(home, capsys):
    code, _, err = run(capsys, "pass", "verify", "DABAI1.xyz")
    assert code == 2 and "no community public key" in err


def test_corrupt_config_stops_with_key_value_and_rule(home, capsys):
    home.root.mkdir(parents=True, exist_ok=True)
    home.config.write_text("[gate]\npulse_ms = -5\n", encoding="utf-8")
    code, _, err = run(capsys, "config", "check")
    assert code == 2 and "gate.pulse_ms = -5: must be between 50 and 10000" in err
    code, _, err = run(capsys, "run", "--duration", "0.1")
    assert code == 2 and "gate.pulse_ms" in err  # the kiosk does not start on a half-valid config


def test_config_set_validates_and_saves(home, capsys):
    assert run(capsys, "config", "set", "policy.request_required", "true")[0] == 0
    assert "request_required = true" in home.config.read_text(encoding="utf-8")
    code, _, err = run(capsys, "config", "set", "gate.pulse_ms", "-5")
    assert code == 2 and "must be between" in err
    assert "pulse_ms = 800" in home.config.read_text(encoding="utf-8")  # nothing half-saved


def test_log_list_and_csv_export(home, capsys, tmp_path):
    from kiosk.core.events import Decision
    from kiosk.runtime.assemble import open_store

    store = open_store(home, writer=True)
    store.access_log.append(Decision("denied", "expired", resident_name="张三", mask="with_mask"))
    store.close()
    code, out, _ = run(capsys, "log", "list")
    assert code == 0 and "denied" in out and "expired" in out and "张三" in out
    csv_path = tmp_path / "log.csv"
    assert run(capsys, "log", "export", "--csv", "--out", str(csv_path))[0] == 0
    assert "expired" in csv_path.read_text(encoding="utf-8")


def test_home_flag_overrides_environment(home, capsys, tmp_path):
    other = tmp_path / "other-home"
    run(capsys, "--home", str(other), "residents", "add", "赵六", "--unit", "9-9")
    assert (other / "dabai.db").exists()
    _, out, _ = run(capsys, "residents", "list", "--json")
    assert out.strip() == ""


@pytest.mark.parametrize("argv", [["config", "defaults"], ["config", "show"], ["config", "path"]])
def test_config_commands(home, capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out


def test_doctor_names_what_to_fix(home, capsys):
    code, out, _ = run(capsys, "doctor")
    lines = {line.split()[1]: line for line in out.splitlines() if line.split()}
    assert code == 1
    assert lines["config"].startswith("ok")
    assert lines["community"].startswith("FIX") and "no community public key" in lines["community"]
    assert lines["gate"].startswith("ok") and "sim driver" in lines["gate"]
    home.root.mkdir(parents=True, exist_ok=True)
    home.config.write_text("[camera]\nwidth = 5\n", encoding="utf-8")
    code, out, _ = run(capsys, "doctor")
    assert "FIX   config" in out and "camera.width = 5" in out


def test_doctor_leaves_the_camera_and_relay_of_a_running_kiosk_alone(home, capsys, monkeypatch):
    import kiosk.gate.checks
    from kiosk.runtime.assemble import kiosk_running, open_store

    def driven(config):
        raise AssertionError("doctor drove the relay a running kiosk holds")

    monkeypatch.setattr(kiosk.gate.checks, "driven_checks", driven)
    store = open_store(home, writer=True)  # what the running kiosk holds
    try:
        assert kiosk_running(home)
        _, out, _ = run(capsys, "doctor")
    finally:
        assert store.close()
    lines = {line.split()[1]: line for line in out.splitlines() if line.split()}
    assert "in use by the running kiosk" in lines["camera"]
    assert lines["gate"].startswith("ok") and "held by the running kiosk" in lines["gate"]
    assert not kiosk_running(home)


def _log_some(home, n=15):
    from kiosk.core.events import Decision
    from kiosk.runtime.assemble import open_store

    store = open_store(home, writer=True)
    for i in range(n):
        store.access_log.append(Decision("denied" if i % 3 else "granted", "no_mask" if i % 3 else "ok",
                                         gate_opened=not i % 3), ts=1000.0 + i)
    assert store.close()


def test_log_verify_passes_an_intact_log_and_names_an_edited_record(home, capsys):
    import sqlite3

    _log_some(home)
    code, out, _ = run(capsys, "log", "verify")
    assert code == 0 and out.startswith("ok: 15 record(s)")
    con = sqlite3.connect(str(home.database), isolation_level=None)
    con.execute("UPDATE access_log SET outcome = 'granted', gate_opened = 1 WHERE seq = 5")
    con.close()
    code, out, _ = run(capsys, "log", "verify", "--json")
    verdict = json.loads(out)
    assert code == 1 and verdict["first_bad_seq"] == 5 and not verdict["ok"]


def test_an_emptied_database_is_reported_by_verify_and_doctor_until_acknowledged(home, capsys):
    _log_some(home, n=4)
    home.database.unlink()
    for suffix in ("-wal", "-shm"):
        extra = home.database.with_name(home.database.name + suffix)
        if extra.exists():
            extra.unlink()
    code, out, _ = run(capsys, "log", "acknowledge", "--by", "王经理")  # opens the log: raises the alarm first
    assert code == 0 and "records 1-4 are gone" in out
    code, out, _ = run(capsys, "log", "verify")
    assert code == 1 and "BAD: records 1-4 deleted" in out  # the gap stays visible in the evidence
    rows = [json.loads(line) for line in run(capsys, "log", "list", "--json")[1].splitlines()]
    assert [(r["outcome"], r["reason"]) for r in rows[:2]] == [("alarm", "acknowledged"), ("alarm", "database_lost")]


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_broken_database_is_one_sentence_and_exit_3(home, capsys, content):
    home.root.mkdir(parents=True, exist_ok=True)
    if not content:  # a folder where the database should be
        home.database.mkdir()
    else:
        home.database.write_bytes(content)
    code, out, err = run(capsys, "residents", "list")
    assert code == 3 and err.startswith("dabai-kiosk: ") and "Traceback" not in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "doctor")
    assert code == 1 and "FIX   database" in out
