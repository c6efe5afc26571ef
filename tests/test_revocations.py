"""The signed revocation list: revocations that survive the database and never roll back."""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.cli import main
from kiosk.config import Home, PolicyConfig
from kiosk.core.events import FaceObservation, FacesSeen, Log, Mask, PassCheck, PassPresented, Say
from kiosk.core.machine import State, step
from kiosk.core.prompts import PROMPTS
from kiosk.runtime.assemble import open_store, pass_checker
from kiosk.store.passes import REASONS, create_keys, issue_pass, key_id, load_public_key, write_public_key
from kiosk.store.revocations import (
    RevocationError,
    RevocationList,
    apply_list,
    load_list,
    parse_list,
    reinstate_resident,
    revoke_pass,
    revoke_resident,
    seen_version,
    sign_list,
    state_path,
    update_list,
)

NOW = time.time()


@pytest.fixture
def kiosk(home):
    """A home with the community key, 张三 (two passes) and 李四 (one pass); yields (store, key, tokens, check)."""
    store = open_store(home)
    key = create_keys(home.private_key, home.public_key)
    zhang = store.registry.add("张三", "3-201")
    li = store.registry.add("李四", "5-502")
    tokens = {
        "zhang1": issue_pass(store.registry, key, zhang.id, 30, NOW)[1],
        "zhang2": issue_pass(store.registry, key, zhang.id, 30, NOW)[1],
        "li": issue_pass(store.registry, key, li.id, 30, NOW)[1],
    }
    check = pass_checker(home, store.registry)
    yield store, key, tokens, check
    store.close()


def reasons(check, tokens):
    return {name: check(token).reason for name, token in tokens.items()}


def empty_database(home, store, names=("张三", "李四")):
    """The database is lost: a fresh, empty one in its place, the residents added again."""
    store.close()
    for suffix in ("", "-wal", "-shm"):
        path = home.database.with_name(home.database.name + suffix)
        if path.exists():
            path.unlink()
    fresh = open_store(home)
    for name in names:
        fresh.registry.add(name, "1-101")
    return fresh


# ---- revoking writes a signed, versioned list ---------------------------------------------------------


def test_revoking_signs_a_new_version_each_time(home, kiosk):
    store, _, tokens, check = kiosk
    assert not home.revocations.exists() and reasons(check, tokens) == {"zhang1": "ok", "zhang2": "ok", "li": "ok"}
    record, first = revoke_pass(home, store.registry, 1)
    assert record.serial == 1 and first.version == 1 and first.passes == {1} and first.residents == set()
    resident, second = revoke_resident(home, store.registry, "李四")
    assert resident.name == "李四" and second.version == 2 and second.passes == {1} and second.residents == {2}
    data = json.loads(home.revocations.read_text())
    assert sorted(data) == ["format", "issued_at", "key_id", "passes", "residents", "signature", "version"]
    assert data["version"] == 2 and data["passes"] == [1] and data["residents"] == [2]
    assert seen_version(home) == 2 and json.loads(state_path(home).read_text()) == {"version": 2}
    assert reasons(check, tokens) == {"zhang1": "pass_revoked", "zhang2": "ok", "li": "resident_revoked"}
    # Nothing new to revoke: no new version.
    assert update_list(home, store.registry).version == 2


def test_list_covers_what_the_database_revoked_before_it_existed(home, kiosk):
    store, _, _, _ = kiosk
    store.registry.revoke_pass(2)  # revoked before this kiosk had a list
    store.registry.revoke("张三")
    _, revocations = revoke_pass(home, store.registry, 3)
    assert revocations.passes == {2, 3} and revocations.residents == {1}


def test_revocations_survive_an_emptied_database(home, kiosk):
    store, key, tokens, _ = kiosk
    revoke_pass(home, store.registry, 1)
    revoke_resident(home, store.registry, "李四")
    fresh = empty_database(home, store)
    try:
        check = pass_checker(home, fresh.registry)
        # Unknown serials are refused anyway; revoked ones are named as such.
        assert reasons(check, tokens) == {"zhang1": "pass_revoked", "zhang2": "unknown_pass", "li": "resident_revoked"}
        # Re-registered passes with the old serials: the revoked one stays revoked.
        for serial, rid in ((1, 1), (2, 1), (3, 2)):
            fresh.db.execute("INSERT INTO passes(serial, resident_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                             (serial, rid, NOW, NOW + 86400))
        assert reasons(check, tokens) == {"zhang1": "pass_revoked", "zhang2": "ok", "li": "resident_revoked"}
    finally:
        fresh.close()


def test_revocations_survive_a_database_restored_from_an_old_backup(home, kiosk):
    store, _, tokens, _ = kiosk
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    backup = home.root / "backup.db"
    shutil.copy(str(home.database), str(backup))
    revoke_pass(home, store.registry, 2)
    revoke_resident(home, store.registry, "李四")
    store.close()
    shutil.copy(str(backup), str(home.database))
    restored = open_store(home)
    try:
        assert restored.registry.get_pass(2).revoked_at is None and restored.registry.get(2).active
        check = pass_checker(home, restored.registry)
        assert reasons(check, tokens) == {"zhang1": "ok", "zhang2": "pass_revoked", "li": "resident_revoked"}
    finally:
        restored.close()


def test_reinstating_removes_the_resident_in_a_new_version_but_passes_stay_revoked(home, kiosk):
    store, _, tokens, check = kiosk
    revoke_pass(home, store.registry, 1)
    revoke_resident(home, store.registry, "张三")
    assert reasons(check, tokens)["zhang2"] == "resident_revoked"
    resident, revocations = reinstate_resident(home, store.registry, "张三")
    assert resident.active and revocations.version == 3 and revocations.residents == set() and revocations.passes == {1}
    assert reasons(check, tokens) == {"zhang1": "pass_revoked", "zhang2": "ok", "li": "ok"}


def test_reinstating_needs_the_private_key_when_the_resident_is_on_the_list(home, kiosk):
    store, _, tokens, check = kiosk
    revoke_resident(home, store.registry, "张三")
    home.private_key.unlink()
    with pytest.raises(RevocationError, match="not reinstated: no community private key"):
        reinstate_resident(home, store.registry, "张三")
    assert not store.registry.get(1).active and reasons(check, tokens)["zhang2"] == "resident_revoked"


def test_a_kiosk_without_the_private_key_revokes_in_its_database_and_says_the_list_was_not_updated(home, kiosk):
    store, _, tokens, check = kiosk
    home.private_key.unlink()
    with pytest.raises(RevocationError, match="revoked in this kiosk's database, but the signed revocation list"):
        revoke_pass(home, store.registry, 3)
    assert check(tokens["li"]).reason == "pass_revoked" and not home.revocations.exists()


def test_a_home_without_any_key_revokes_in_the_database_only(home):
    store = open_store(home)
    try:
        store.registry.add("张三", "3-201")
        resident, revocations = revoke_resident(home, store.registry, "张三")
        assert not resident.active and revocations is None and not home.revocations.exists()
    finally:
        store.close()


# ---- never rolled back ---------------------------------------------------------------------------------


def test_an_older_list_is_refused_and_every_pass_is_refused_until_the_newest_is_back(home, kiosk):
    store, _, tokens, check = kiosk
    revoke_pass(home, store.registry, 1)
    old = home.revocations.read_bytes()
    revoke_pass(home, store.registry, 2)
    newest = home.revocations.read_bytes()
    home.revocations.write_bytes(old)  # restored from a backup, or copied back by hand
    assert set(reasons(check, tokens).values()) == {"revocations_unsure"}
    with pytest.raises(RevocationError, match="older than version 2"):
        load_list(home, load_public_key(home.public_key))
    with pytest.raises(RevocationError, match="refused: version 1 is older than version 2"):
        apply_list(home, old)
    with pytest.raises(RevocationError, match="older than version 2"):
        revoke_pass(home, store.registry, 3)  # signing on top of an unsure list would forget what it held
    assert store.registry.get_pass(3).revoked_at is not None  # the database took it all the same
    assert apply_list(home, newest).version == 2
    assert reasons(check, tokens) == {"zhang1": "pass_revoked", "zhang2": "pass_revoked", "li": "pass_revoked"}
    assert revoke_pass(home, store.registry, 3)[1].passes == {1, 2, 3}  # and the list, once it is sound again


def test_a_missing_list_after_one_was_accepted_refuses_every_pass(home, kiosk):
    store, _, tokens, check = kiosk
    revoke_pass(home, store.registry, 1)
    saved = home.revocations.read_bytes()
    home.revocations.unlink()
    assert set(reasons(check, tokens).values()) == {"revocations_unsure"}
    assert apply_list(home, saved).version == 1  # the same version may restore a lost file
    assert reasons(check, tokens)["zhang2"] == "ok"


@pytest.mark.parametrize("damage", ["drop a serial", "bump the version", "garbage", "truncated", "other key"])
def test_an_altered_or_foreign_list_refuses_every_pass(home, kiosk, damage):
    store, _, tokens, check = kiosk
    revoke_pass(home, store.registry, 1)
    data = json.loads(home.revocations.read_text())
    if damage == "drop a serial":
        data["passes"] = []
        home.revocations.write_text(json.dumps(data))
    elif damage == "bump the version":
        data["version"] = 99
        home.revocations.write_text(json.dumps(data))
    elif damage == "garbage":
        home.revocations.write_bytes(b"\xff\x00 not json")
    elif damage == "truncated":
        home.revocations.write_bytes(home.revocations.read_bytes()[:40])
    else:
        stranger = Ed25519PrivateKey.generate()
        lst = RevocationList(5, int(NOW), bytes.fromhex(data["key_id"]), frozenset(), frozenset())
        home.revocations.write_bytes(sign_list(stranger, lst))
    assert set(reasons(check, tokens).values()) == {"revocations_unsure"}
    with pytest.raises(RevocationError):
        apply_list(home, home.revocations.read_bytes())


def test_a_same_version_with_other_contents_is_refused(home, kiosk):
    store, key, _, _ = kiosk
    _, first = revoke_pass(home, store.registry, 1)
    rival = RevocationList(1, first.issued_at, first.key_id, frozenset({3}), frozenset())
    with pytest.raises(RevocationError, match="different list with version 1"):
        apply_list(home, sign_list(key, rival))


def test_an_unreadable_state_record_refuses_every_pass(home, kiosk):
    store, _, tokens, check = kiosk
    revoke_pass(home, store.registry, 1)
    state_path(home).write_text("{version: ")
    assert set(reasons(check, tokens).values()) == {"revocations_unsure"}


def test_a_running_kiosk_takes_a_newer_list_from_another_process_at_once(home, kiosk):
    store, key, tokens, check = kiosk
    assert check(tokens["li"]).valid
    # The issuing machine signs version 1 revoking pass 3 and it is copied here (a fleet sync).
    issued = RevocationList(1, int(NOW), key_id(key.public_key()), frozenset({3}), frozenset())
    apply_list(home, sign_list(key, issued))
    assert check(tokens["li"]).reason == "pass_revoked" and seen_version(home) == 1


def test_a_kiosk_that_only_verifies_learns_the_version_from_a_copied_list(home, tmp_path, kiosk):
    store, key, tokens, _ = kiosk
    revoke_pass(home, store.registry, 3)
    other = Home(tmp_path / "kiosk2")  # holds only community.pub and its own database
    write_public_key(key.public_key(), other.public_key)
    other.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(str(home.revocations), str(other.revocations))
    assert load_list(other, load_public_key(other.public_key)).passes == {3}
    assert seen_version(other) == 1  # remembered on first sight
    other.revocations.unlink()
    with pytest.raises(RevocationError, match="missing"):
        load_list(other, load_public_key(other.public_key))


# ---- the file is parsed strictly -------------------------------------------------------------------


def _signed_fields(key, **changes):
    data = json.loads(sign_list(key, RevocationList(3, int(NOW), key_id(key.public_key()), frozenset({1, 5}),
                                                    frozenset({2}))))
    data.update(changes)
    return data


@pytest.mark.parametrize("changes", [
    {"version": True}, {"version": 0}, {"version": 3.0}, {"version": "3"}, {"passes": [5, 1]}, {"passes": [1, 1, 5]},
    {"passes": [0, 5]}, {"residents": [2**32]}, {"residents": "2"}, {"key_id": "ABCDEF0123456789"},
    {"key_id": "00"}, {"format": "DABAI-REVOCATIONS2"}, {"signature": "A" * 86 + "=="}, {"extra": 1},
])
def test_the_list_is_parsed_strictly(home, changes):
    key = Ed25519PrivateKey.generate()
    data = _signed_fields(key, **changes)
    with pytest.raises(RevocationError):
        parse_list(json.dumps(data).encode(), key.public_key())


def test_duplicate_fields_and_non_numbers_are_refused(home):
    key = Ed25519PrivateKey.generate()
    text = json.dumps(_signed_fields(key))
    assert parse_list(text.encode(), key.public_key()).passes == {1, 5}
    with pytest.raises(RevocationError, match="twice"):
        parse_list((text[:-1] + ',"version":3}').encode(), key.public_key())
    with pytest.raises(RevocationError):
        parse_list(re.sub(r'"issued_at": \d+', '"issued_at": NaN', text).encode(), key.public_key())


def test_the_signature_covers_every_field(home):
    key = Ed25519PrivateKey.generate()
    for field, value in (("issued_at", 1), ("residents", []), ("passes", [1]), ("version", 4)):
        with pytest.raises(RevocationError, match="signature does not match"):
            parse_list(json.dumps(_signed_fields(key, **{field: value})).encode(), key.public_key())


# ---- the new reasons reach the person at the gate -------------------------------------------------------


@pytest.mark.parametrize("reason", ["revocations_unsure", "unknown_pass"])
def test_new_reasons_deny_with_their_own_prompt(reason):
    from kiosk.ui.operator.log import REASON_ZH

    assert set(REASONS) <= set(PROMPTS) and set(REASONS) <= set(REASON_ZH)
    policy, state, now, actions = PolicyConfig(), State(), 0.0, []
    face = FacesSeen((FaceObservation(1, Mask.WITH, 0.95, (200, 100, 360, 260)),))
    for event in [face] * 3 + [PassPresented(PassCheck(False, reason))]:
        now += 0.1
        state, out = step(state, event, now, policy)
        actions.extend(out)
    logs = [a.decision for a in actions if isinstance(a, Log)]
    assert [(d.outcome, d.reason) for d in logs] == [("denied", reason)]
    assert [a.text for a in actions if isinstance(a, Say)][-1] == PROMPTS[reason]


# ---- the commands ---------------------------------------------------------------------------------


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_revoke_reinstate_show_and_apply(home, capsys, tmp_path):
    run(capsys, "residents", "add", "张三", "--unit", "3-201")
    code, out, _ = run(capsys, "pass", "issue", "张三", "--days", "30", "--print-token")
    token = out.strip().splitlines()[-1]
    assert code == 0
    code, out, _ = run(capsys, "revocations", "show")
    assert code == 0 and "no revocation list yet" in out
    code, out, _ = run(capsys, "pass", "revoke", "1")
    assert code == 0 and "(revocation list version 1)" in out
    code, out, _ = run(capsys, "residents", "revoke", "张三")
    assert code == 0 and "(revocation list version 2)" in out
    code, out, _ = run(capsys, "residents", "reinstate", "张三")
    assert code == 0 and "(revocation list version 3)" in out
    code, out, _ = run(capsys, "revocations", "show", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["version"] == 3 and shown["passes"] == [1] and shown["residents"] == []
    code, out, _ = run(capsys, "pass", "verify", token, "--json")
    assert json.loads(out)["reason"] == "pass_revoked"

    saved = tmp_path / "v3.json"
    shutil.copy(str(home.revocations), str(saved))
    home.revocations.unlink()
    code, out, _ = run(capsys, "pass", "verify", token, "--json")
    assert code == 1 and json.loads(out)["reason"] == "revocations_unsure"
    code, out, _ = run(capsys, "revocations", "show")
    assert code == 1 and "UNSURE" in out and "missing" in out
    code, out, _ = run(capsys, "revocations", "apply", str(saved))
    assert code == 0 and "version 3 installed" in out
    code, _, err = run(capsys, "revocations", "apply", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read" in err


def test_cli_pass_revoke_of_an_unknown_or_impossible_serial_is_a_clear_error(home, capsys):
    run(capsys, "residents", "add", "张三", "--unit", "3-201")
    run(capsys, "pass", "issue", "张三")
    code, _, err = run(capsys, "pass", "revoke", "7")
    assert code == 2 and "no pass with serial 7" in err
    for serial in ("0", "-3", "4294967296", "99999999999999999999999"):
        code, _, err = run(capsys, "pass", "revoke", serial)
        assert code == 2 and "between 1 and 4294967295" in err
    assert not home.revocations.exists()


@pytest.mark.parametrize("days", ["nan", "inf", "-inf", "0", "-1", "3651", "100000", "1e-9"])
def test_cli_issue_refuses_days_out_of_bounds_and_writes_nothing(home, capsys, days):
    run(capsys, "residents", "add", "张三", "--unit", "3-201")
    code, out, err = run(capsys, "pass", "issue", "张三", "--days=" + days)
    assert code == 2 and "days" in err and "Traceback" not in err and out == ""
    store = open_store(home)
    try:
        assert store.registry.passes_of(1) == []
    finally:
        store.close()
    assert not home.private_key.exists()  # not even the key pair


def test_cli_adds_and_issues_after_an_emptied_database_above_what_the_list_holds(home, capsys):
    run(capsys, "residents", "add", "张三", "--unit", "3-201")
    run(capsys, "residents", "add", "李四", "--unit", "5-502")
    run(capsys, "pass", "issue", "张三")
    run(capsys, "pass", "issue", "李四")
    run(capsys, "pass", "revoke", "2")
    run(capsys, "residents", "revoke", "李四")
    store = open_store(home)
    empty_database(home, store, names=("张三",)).close()  # 张三 added again as id 1 by a script
    code, out, _ = run(capsys, "residents", "add", "王五", "--unit", "1-101")
    assert code == 0 and out.startswith("added resident 3:")  # not 2: 李四's id stays revoked
    code, out, _ = run(capsys, "pass", "issue", "王五", "--print-token")
    assert code == 0 and out.startswith("pass 3 ")  # not 1 (an old pass of 张三) or 2 (revoked for ever)
    code, out, _ = run(capsys, "pass", "verify", out.strip().splitlines()[-1], "--json")
    assert json.loads(out)["valid"] is True
