"""The office and a kiosk's link on a real Mosquitto (issue 14): the office publishes what changes at the issuing
station, the kiosk applies it and decides on it, its log reaches the office, the office's view and `log verify` see
it; the commands around it (fleet join, office status, office log verify, doctor) say what they should."""

from __future__ import annotations

import json
import threading
import time

import pytest

from kiosk.cli import main
from kiosk.config import FleetConfig, Home, load_config, replace, save_config
from kiosk.core.events import Decision
from kiosk.fleet.broker import init_fleet

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'dabai-kiosk[fleet]')")

from tests.test_fleet_broker import Broker, free_port, needs_mosquitto, wait_for  # noqa: E402


@pytest.fixture
def community(tmp_path):
    """A fleet folder, an office home with the community key, one kiosk joined with `fleet join`."""
    from kiosk.store.passes import create_keys

    folder = tmp_path / "fleet"
    init_fleet(folder, "garden", port=free_port(), bind="127.0.0.1")
    office = Home(tmp_path / "office")
    create_keys(office.private_key, office.public_key)
    assert main(["--home", str(office.root), "fleet", "add-kiosk", "gate-1", "--dir", str(folder)]) == 0
    kiosk = Home(tmp_path / "gate-1")
    assert main(["--home", str(kiosk.root), "fleet", "join", str(folder / "members" / "gate-1")]) == 0
    return folder, office, kiosk


def test_join_installs_the_bundle_and_the_community_key(community, tmp_path, capsys):
    folder, office, kiosk = community
    assert kiosk.public_key.read_bytes() == office.public_key.read_bytes()
    assert (kiosk.fleet / "gate-1.key").exists() and (kiosk.fleet / "fleet.json").exists()
    other = Home(tmp_path / "other")
    other.keys.mkdir(parents=True)
    other.public_key.write_bytes(b"another community's key")
    capsys.readouterr()
    assert main(["--home", str(other.root), "fleet", "join", str(folder / "members" / "gate-1")]) == 2
    assert "another community key" in capsys.readouterr().err
    assert main(["--home", str(other.root), "fleet", "join", str(folder / "members" / "office")]) == 2


def test_a_kiosk_on_its_own_starts_no_link_and_doctor_says_so(home, capsys):
    from kiosk.fleet.link import out_of_touch, start_link

    assert start_link(home, FleetConfig(), access_log=None, db=None) is None
    assert out_of_touch(home, FleetConfig()) is None
    main(["--home", str(home.root), "doctor"])
    assert "on its own (no fleet bundle" in capsys.readouterr().out


def test_doctor_and_out_of_touch_name_a_kiosk_that_lost_its_office(community, capsys):
    from kiosk.fleet.link import CONTACT_FILE, out_of_touch

    _, _, kiosk = community
    config = FleetConfig(out_of_touch_s=60)
    assert "never reached" in out_of_touch(kiosk, config)
    kiosk.state.mkdir(parents=True, exist_ok=True)
    (kiosk.state / CONTACT_FILE).write_text(json.dumps({"last_contact": time.time() - 30, "started": 0}))
    assert out_of_touch(kiosk, config) is None
    assert "no contact with the office's broker for 3 min" in out_of_touch(kiosk, config, now=time.time() + 150)
    (kiosk.state / CONTACT_FILE).write_text(json.dumps({"last_contact": time.time() - 900, "started": 0}))
    capsys.readouterr()
    main(["--home", str(kiosk.root), "doctor"])
    line = [x for x in capsys.readouterr().out.splitlines() if " fleet " in x][0]
    assert line.startswith("FIX") and "kiosk gate-1: no contact with the office's broker for 15 min" in line


@needs_mosquitto
def test_the_office_and_a_kiosk_stay_in_step_through_the_broker(community, capsys):
    from kiosk.fleet.link import KioskLink, read_contact
    from kiosk.fleet.office import Office, office_database, overview, rotate_key, verify_all
    from kiosk.runtime.assemble import open_store, pass_checker
    from kiosk.store.passes import issue_pass, load_private_key
    from kiosk.store.revocations import revoke_pass

    folder, office_home, kiosk_home = community
    save_config(replace(load_config(office_home.config), "policy", request_required=True), office_home.config)
    ostore = open_store(office_home, writer=True)
    zhang = ostore.registry.add("张三", "3-201")
    serial, token = issue_pass(ostore.registry, load_private_key(office_home.private_key), zhang.id, 30, time.time())
    ostore.close()

    broker = Broker(folder / "broker" / "mosquitto.conf")
    broker.start()
    office = Office(office_home, folder / "members" / "office", poll_s=0.1)
    stop_office = threading.Event()
    office_thread = threading.Thread(target=office.run, args=(stop_office,), daemon=True)
    office_thread.start()
    kstore = open_store(kiosk_home, writer=True)
    check = pass_checker(kiosk_home, kstore.registry)
    applied = []
    link = KioskLink(kiosk_home, kiosk_home.fleet, kstore.access_log, kstore.db, FleetConfig(status_every_s=0.5),
                     on_applied=lambda name, version: applied.append((name, version, time.time())))
    stop_link = link.start()
    try:
        assert wait_for(lambda: {"registry", "policy"} <= {a[0] for a in applied}, timeout=15)
        assert load_config(kiosk_home.config).policy.request_required  # the office's policy is the kiosk's
        assert check(token).valid and check(token).resident_name == "张三"
        for _ in range(30):  # decisions on the kiosk reach the office
            kstore.access_log.append(Decision("granted", "ok", pass_serial=serial, resident_name="张三",
                                              gate_opened=True), ts=time.time())
        assert wait_for(lambda: link.uplink.acked == 30, timeout=15)

        ostore = open_store(office_home, writer=True)  # revoked at the office: refused at the gate moments later
        try:
            revoke_pass(office_home, ostore.registry, serial)
        finally:
            ostore.close()
        revoked_at = time.time()
        assert wait_for(lambda: check(token).reason == "pass_revoked", timeout=5)
        assert time.time() - revoked_at < 2.0
        assert wait_for(lambda: any(k["versions"].get("revocations") == 1 for k in overview(
            office_database(office_home))), timeout=10)
        assert wait_for(lambda: (read_contact(kiosk_home).get("last_contact") or 0) > revoked_at - 5, timeout=5)

        # the community key rotated at the office: the kiosk follows, old passes stay good for the grace period
        li_serial_token = None
        ostore = open_store(office_home, writer=True)
        try:
            li = ostore.registry.add("李四", "5-102")
            li_serial_token = issue_pass(ostore.registry, load_private_key(office_home.private_key), li.id, 30,
                                         time.time())
        finally:
            ostore.close()
        assert wait_for(lambda: check(li_serial_token[1]).valid, timeout=10)
        rotate_key(office_home, grace_days=7)
        assert wait_for(lambda: kiosk_home.public_key.read_bytes() == office_home.public_key.read_bytes(), timeout=10)
        ostore = open_store(office_home, writer=True)
        try:
            _, new_token = issue_pass(ostore.registry, load_private_key(office_home.private_key), li.id, 30, time.time())
        finally:
            ostore.close()
        assert wait_for(lambda: check(new_token).valid, timeout=10)  # signed with the new key, in the new registry
        assert check(li_serial_token[1]).valid and check(token).reason == "pass_revoked"
        assert wait_for(lambda: any(k["versions"].get("key") == 1 for k in overview(office_database(office_home))),
                        timeout=10)
        assert not link.follower.refused  # every document re-signed with the new key was taken
    finally:
        stop_link()
        stop_office.set()
        office_thread.join(10)
        kstore.close()
        broker.stop()
    [gate] = overview(office_database(office_home))
    assert gate["kiosk"] == "gate-1" and gate["records"] == 30 and gate["records_upto"] == 30
    assert gate["versions"]["registry"] >= 3 and gate["versions"]["policy"] == 2  # re-signed after the rotation
    assert [r["seq"] for r in gate["recent"]] == [30, 29, 28, 27, 26] and gate["recent"][0]["resident_name"] == "张三"
    [verdict] = verify_all(office_database(office_home))
    assert (verdict["kiosk"], verdict["ok"], verdict["records"], verdict["gaps"]) == ("gate-1", True, 30, 0)
    assert verdict["checkpoint"] and verdict["checkpoint"] >= 10  # the kiosk's signed checkpoints, checked with its pinned key
    capsys.readouterr()
    assert main(["--home", str(office_home.root), "office", "log", "verify"]) == 0
    assert "gate-1           30 records: chain ok, signed to #" in capsys.readouterr().out
    assert main(["--home", str(office_home.root), "office", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["records"] == 30
    import sqlite3

    db = sqlite3.connect(str(office_database(office_home)))
    db.execute("UPDATE fleet_log SET resident_name = '李四' WHERE seq = 12")  # altered at the office
    db.commit()
    db.close()
    assert main(["--home", str(office_home.root), "office", "log", "verify"]) == 1
    assert "BAD at #12" in capsys.readouterr().out
    # the whole chain re-computed after the edit: the hashes agree again, the kiosk's signed checkpoint does not
    from kiosk.fleet.logsync import RECORD_FIELDS
    from kiosk.store.chain import record_hash

    db = sqlite3.connect(str(office_database(office_home)))
    prev = db.execute("SELECT hash FROM fleet_log WHERE seq = 11").fetchone()[0]
    for seq in range(12, 31):
        row = dict(zip(RECORD_FIELDS, db.execute("SELECT {} FROM fleet_log WHERE seq = ?".format(
            ", ".join(RECORD_FIELDS)), (seq,)).fetchone()))
        new_hash = record_hash(row, prev)
        db.execute("UPDATE fleet_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, new_hash, seq))
        prev = new_hash
    db.commit()
    db.close()
    [rewritten] = verify_all(office_database(office_home))
    assert not rewritten["ok"] and "does not match its signed checkpoint" in rewritten["why"]
    db = sqlite3.connect(str(office_database(office_home)))
    db.execute("UPDATE fleet_keys SET other = 'another key'")  # what a second kiosk key under this name leaves
    db.execute("DELETE FROM fleet_log WHERE seq > 11")
    db.commit()
    db.close()
    [impostor] = verify_all(office_database(office_home))
    assert not impostor["ok"] and "another checkpoint key" in impostor["why"]
    main(["--home", str(office_home.root), "doctor"])  # the office's doctor: every gate heard from lately
    assert "ok    fleet                office: 1 gate, all heard from within 300 s" in capsys.readouterr().out
    db = sqlite3.connect(str(office_database(office_home)))
    db.execute("UPDATE fleet_status SET received_at = received_at - 3600")
    db.execute("UPDATE fleet_kiosks SET last_seen = last_seen - 3600")
    db.commit()
    db.close()
    main(["--home", str(office_home.root), "doctor"])
    assert "FIX   fleet                office: no word for more than 300 s from gate-1" in capsys.readouterr().out


def test_a_gate_with_only_the_community_key_refuses_to_issue_a_pass_and_keeps_the_key(community, capsys):
    _, office, kiosk = community
    before = kiosk.public_key.read_bytes()
    assert main(["--home", str(kiosk.root), "residents", "add", "张三", "--unit", "3-201"]) == 0
    capsys.readouterr()
    assert main(["--home", str(kiosk.root), "pass", "issue", "张三", "--out", str(kiosk.root / "p.png")]) != 0
    assert "passes are issued at the issuing station" in capsys.readouterr().err
    assert kiosk.public_key.read_bytes() == before == office.public_key.read_bytes()
    assert not kiosk.private_key.exists()


def test_the_headless_kiosk_takes_the_offices_policy_and_says_so(home, monkeypatch, capsys):
    import kiosk.fleet.link as link
    from kiosk.runtime.headless import _start_fleet

    calls = []
    monkeypatch.setattr(link, "start_link", lambda h, c, log, db, on_applied=None: calls.append(on_applied) or "stop")
    save_config(load_config(home.config), home.config)
    kiosk = type("Kiosk", (), {"config": load_config(home.config)})()
    parts = type("Parts", (), {"store": type("Store", (), {"access_log": None, "db": None})()})()
    assert _start_fleet(home, kiosk.config, parts, kiosk) == "stop"
    save_config(replace(load_config(home.config), "policy", request_required=True), home.config)
    calls[0]("policy", 4)
    assert kiosk.config.policy.request_required
    assert "the office's policy version 4 is in force" in capsys.readouterr().err

    def broken(*args, **kwargs):
        from kiosk.fleet.broker import FleetError

        raise FleetError("paho-mqtt is not installed")

    monkeypatch.setattr(link, "start_link", broken)  # the kiosk runs on its own and says why
    assert _start_fleet(home, kiosk.config, parts, kiosk) is None
    assert "problem: fleet: paho-mqtt is not installed" in capsys.readouterr().err


def test_a_damaged_bundle_leaves_the_kiosk_on_its_own_saying_why(community):
    from kiosk.fleet.broker import FleetError
    from kiosk.fleet.link import start_link
    from kiosk.runtime.assemble import open_store

    _, _, kiosk = community
    (kiosk.fleet / "gate-1.key").write_text("not a key")
    store = open_store(kiosk, writer=True)
    try:
        with pytest.raises(FleetError, match="bundle .* is unusable"):
            start_link(kiosk, FleetConfig(), store.access_log, store.db)
        (kiosk.fleet / "fleet.json").write_text("{")
        with pytest.raises(FleetError, match="not a fleet member bundle"):
            start_link(kiosk, FleetConfig(), store.access_log, store.db)
    finally:
        store.close()
