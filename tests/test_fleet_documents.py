"""The office's signed documents, applied by a kiosk without a broker (issue 14 item 2): the registry from snapshots
and changes, atomically; the gate policy; the community key's rotation with a grace period for old passes; and every
refusal: unsigned, forged, replayed, a change from a version the kiosk does not hold, a registry that would differ."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import Home, load_config, replace, save_config
from kiosk.fleet.documents import (
    DocumentError,
    Stale,
    apply_document,
    held_versions,
    policy_body,
    registry_change,
    registry_rows,
    registry_snapshot,
    sign_document,
)
from kiosk.fleet.office import rotate_key
from kiosk.runtime.assemble import open_store, pass_checker
from kiosk.store.passes import create_keys, issue_pass, load_private_key
from kiosk.store.revocations import load_list, revoke_resident, seen_version

NOW = time.time()


@pytest.fixture
def pair(tmp_path):
    """(office home, office store, kiosk home, kiosk store): the kiosk holds the community's public key only."""
    office = Home(tmp_path / "office")
    create_keys(office.private_key, office.public_key)
    kiosk = Home(tmp_path / "gate-1")
    kiosk.keys.mkdir(parents=True)
    shutil.copy(str(office.public_key), str(kiosk.public_key))
    office_store, kiosk_store = open_store(office, writer=True), open_store(kiosk, writer=True)
    yield office, office_store, kiosk, kiosk_store
    office_store.close()
    kiosk_store.close()


def _snapshot(office, store, version):
    return sign_document(load_private_key(office.private_key), "registry", version, registry_snapshot(store.db))


def test_a_registry_snapshot_then_a_change_make_the_kiosk_hold_the_offices_residents_and_passes(pair):
    office, ostore, kiosk, kstore = pair
    key = load_private_key(office.private_key)
    zhang = ostore.registry.add("张三", "3-201")
    _, token = issue_pass(ostore.registry, key, zhang.id, 30, NOW)
    check = pass_checker(kiosk, kstore.registry)
    assert check(token).reason == "unknown_pass"  # the kiosk was never told
    kstore.registry.add("本地住户", "9-999")  # a kiosk's own edit is replaced by the office's registry

    first = registry_snapshot(ostore.db)
    apply_document(kiosk, kstore.db, sign_document(key, "registry", 1, first))
    assert registry_rows(kstore.db) == registry_rows(ostore.db)
    result = check(token)
    assert result.valid and result.resident_name == "张三"

    li = ostore.registry.add("李四", "5-102")
    _, token_li = issue_pass(ostore.registry, key, li.id, 30, NOW)
    second = registry_snapshot(ostore.db)
    change = registry_change(first, second, 1)
    assert [r[1] for r in change["residents"]] == ["李四"] and len(change["passes"]) == 1
    apply_document(kiosk, kstore.db, sign_document(key, "registry-change", 2, change))
    assert registry_rows(kstore.db) == registry_rows(ostore.db)
    assert check(token_li).valid
    assert held_versions(kiosk)["registry"] == 2
    # the snapshot of the same version, retained on the broker, comes after the change: nothing to do
    with pytest.raises(Stale, match="held already"):
        apply_document(kiosk, kstore.db, sign_document(key, "registry", 2, second))


def test_refused_documents_change_nothing(pair, tmp_path):
    office, ostore, kiosk, kstore = pair
    key = load_private_key(office.private_key)
    ostore.registry.add("张三", "3-201")
    v1 = registry_snapshot(ostore.db)
    apply_document(kiosk, kstore.db, sign_document(key, "registry", 3, v1))
    before = registry_rows(kstore.db)
    ostore.registry.add("李四", "5-102")
    v2 = registry_snapshot(ostore.db)

    forger = Ed25519PrivateKey.generate()
    with pytest.raises(DocumentError, match="not this community's key"):
        apply_document(kiosk, kstore.db, sign_document(forger, "registry", 9, v2))
    genuine = json.loads(sign_document(key, "registry", 9, v2))
    genuine["body"]["residents"] = []  # altered in transit
    with pytest.raises(DocumentError, match="altered or forged"):
        apply_document(kiosk, kstore.db, json.dumps(genuine).encode())
    unsigned = {k: v for k, v in genuine.items() if k != "signature"}
    with pytest.raises(DocumentError, match="not a signed document"):
        apply_document(kiosk, kstore.db, json.dumps(unsigned).encode())
    with pytest.raises(DocumentError, match="not a signed document"):
        apply_document(kiosk, kstore.db, b"\x00garbage")
    with pytest.raises(Stale, match="older than version 3"):  # a replay of an old version
        apply_document(kiosk, kstore.db, sign_document(key, "registry", 2, v2))
    with pytest.raises(Stale, match="waiting for the next snapshot"):  # a change from a version it does not hold
        apply_document(kiosk, kstore.db, sign_document(key, "registry-change", 5, registry_change(v1, v2, 4)))
    wrong = registry_change(v1, v2, 3)
    wrong["digest"] = "0" * 64  # the office's registry would differ from what the kiosk makes of the change
    with pytest.raises(DocumentError, match="digest differs"):
        apply_document(kiosk, kstore.db, sign_document(key, "registry-change", 4, wrong))
    assert registry_rows(kstore.db) == before  # rolled back: one transaction
    assert held_versions(kiosk)["registry"] == 3


def test_the_offices_policy_becomes_the_kiosks_and_a_bad_one_is_refused(pair):
    office, _, kiosk, kstore = pair
    key = load_private_key(office.private_key)
    save_config(replace(load_config(office.config), "policy", request_required=True, engaged_timeout_s=30.0),
                office.config)
    save_config(replace(load_config(kiosk.config), "community", name="北门"), kiosk.config)
    apply_document(kiosk, None, sign_document(key, "policy", 1, policy_body(office)))
    config = load_config(kiosk.config)
    assert config.policy.request_required and config.policy.engaged_timeout_s == 30.0
    assert config.community.name == "北门"  # only the policy is the office's
    body = policy_body(office)
    body["policy"]["engaged_timeout_s"] = 9999.0
    with pytest.raises(DocumentError, match="engaged_timeout_s"):
        apply_document(kiosk, None, sign_document(key, "policy", 2, body))
    with pytest.raises(DocumentError, match="a different policy with version 1"):
        apply_document(kiosk, None, sign_document(key, "policy", 1, {"policy": {}}))
    assert load_config(kiosk.config).policy.engaged_timeout_s == 30.0 and held_versions(kiosk)["policy"] == 1


def test_a_key_rotation_moves_the_kiosk_to_the_new_key_and_honours_old_passes_for_the_grace_period(pair):
    office, ostore, kiosk, kstore = pair
    old_key = load_private_key(office.private_key)
    zhang = ostore.registry.add("张三", "3-201")
    _, old_token = issue_pass(ostore.registry, old_key, zhang.id, 30, NOW)
    revoke_resident(office, ostore.registry, str(ostore.registry.add("李四", "5-102").id))
    from kiosk.fleet.broker import Fleet
    from kiosk.fleet.lists import ListFollower

    class Offline:  # the follower's message handling, without a broker
        def message_callback_add(self, *a):
            pass

    follower = ListFollower(Fleet("garden"), Offline(), kiosk, kstore.db)
    follower.handle("revocations", office.revocations.read_bytes())
    apply_document(kiosk, kstore.db, _snapshot(office, ostore, 1))
    check = pass_checker(kiosk, kstore.registry)  # a running kiosk: it follows the rotation without a restart
    assert check(old_token).valid

    done = rotate_key(office, grace_days=1)
    new_key = load_private_key(office.private_key)
    _, new_token = issue_pass(ostore.registry, new_key, zhang.id, 30, NOW)
    key_doc = (office.state / "office" / "key.json").read_bytes()
    apply_document(kiosk, kstore.db, key_doc)
    apply_document(kiosk, kstore.db, sign_document(new_key, "registry", 2, registry_snapshot(ostore.db)))
    assert kiosk.public_key.read_bytes() == office.public_key.read_bytes()
    assert seen_version(kiosk) == done["revocations_version"] == 2
    assert load_list(kiosk, new_key.public_key()).residents == {2}  # the list came re-signed with the key
    assert check(new_token).valid and check(old_token).valid  # old passes still open the gate during the grace period
    later = pass_checker(kiosk, kstore.registry)
    import kiosk.runtime.assemble as assemble  # the checker reads the clock from here

    real_time = assemble.time.time
    try:
        assemble.time.time = lambda: NOW + 2 * 86400
        assert later(old_token).reason == "wrong_community" and later(new_token).valid
    finally:
        assemble.time.time = real_time
    with pytest.raises(Stale):  # the same rotation again (retained on the broker): nothing changes
        apply_document(kiosk, kstore.db, key_doc)
    with pytest.raises(DocumentError, match="not this community's key"):  # the old key signs nothing any more
        apply_document(kiosk, kstore.db, sign_document(old_key, "policy", 7, policy_body(office)))


def test_a_rotation_that_stopped_half_way_is_finished_by_running_it_again(pair, monkeypatch):
    import kiosk.store.passes as passes

    office, ostore, kiosk, kstore = pair
    revoke_resident(office, ostore.registry, str(ostore.registry.add("李四", "5-102").id))
    old_pub = office.public_key.read_bytes()
    real = passes.write_public_key

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(passes, "write_public_key", crash)
    with pytest.raises(OSError):
        rotate_key(office, grace_days=1)
    pending = office.keys / "community.key.next"
    assert pending.exists() and office.public_key.read_bytes() == old_pub  # the list is the new key's already
    first_doc = (office.state / "office" / "key.json").read_bytes()
    monkeypatch.setattr(passes, "write_public_key", real)
    done = rotate_key(office, grace_days=5)  # again: the same new key, the same signed rotation
    assert not pending.exists()
    assert (office.state / "office" / "key.json").read_bytes() == first_doc
    new_key = load_private_key(office.private_key)
    from kiosk.store.passes import key_id, load_public_key

    assert done["new_key"] == key_id(new_key.public_key()).hex() == key_id(load_public_key(office.public_key)).hex()
    assert load_list(office, new_key.public_key()).residents == {1} and seen_version(office) == 2
    apply_document(kiosk, kstore.db, first_doc)  # a kiosk takes it as if nothing had happened
    assert kiosk.public_key.read_bytes() == office.public_key.read_bytes()
    assert load_list(kiosk, new_key.public_key()).version == 2


def test_a_registry_the_kiosk_could_not_apply_here_is_kept_and_applied_on_the_next_try(pair, monkeypatch):
    import sqlite3

    from kiosk.fleet.broker import Fleet
    from kiosk.fleet.lists import ListFollower

    office, ostore, kiosk, kstore = pair
    ostore.registry.add("张三", "3-201")

    class Offline:
        def message_callback_add(self, *a):
            pass

    applied = []
    follower = ListFollower(Fleet("garden"), Offline(), kiosk, kstore.db, on_applied=lambda n, v: applied.append(n))
    real = kstore.db.transaction

    def full(write):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(kstore.db, "transaction", full)
    follower.handle("registry", _snapshot(office, ostore, 1))
    assert applied == [] and follower.refused_count == 0 and "registry" in follower.unapplied
    assert registry_rows(kstore.db) == ([], [])
    follower.retry()  # still full: kept again
    assert "registry" in follower.unapplied
    monkeypatch.setattr(kstore.db, "transaction", real)
    follower.retry()
    assert applied == ["registry"] and not follower.unapplied
    assert registry_rows(kstore.db) == registry_rows(ostore.db)


def test_after_a_rotation_the_office_signs_its_registry_and_policy_again_without_any_other_change(pair, tmp_path):
    from kiosk.fleet.broker import init_fleet
    from kiosk.fleet.office import Office

    office, ostore, kiosk, kstore = pair
    ostore.registry.add("张三", "3-201")
    init_fleet(tmp_path / "fleet", "garden", port=18999)

    class Published:  # the broker's side of publish(): what was sent, taken at once
        def __init__(self):
            self.sent = []

        def is_connected(self):
            return True

        def publish(self, topic, data, qos=0, retain=False):
            self.sent.append((topic.rsplit("/", 1)[-1], bytes(data)))
            return type("Info", (), {"wait_for_publish": lambda s, t=None: None, "is_published": lambda s: True})()

    desk = Office(office, tmp_path / "fleet" / "members" / "office")
    desk.client = broker = Published()
    desk.snapshot_every_s = 0.0
    assert {"registry", "policy"} <= set(desk.publish_pending())
    rotate_key(office, grace_days=1)
    broker.sent.clear()
    desk.publish_pending()  # nothing in the database or the config changed: only the key
    sent = dict(broker.sent)
    assert {"key", "registry", "policy"} <= set(sent)
    apply_document(kiosk, kstore.db, sent["key"])
    for name in ("registry", "policy"):  # signed with the new key: the kiosk that rotated takes them
        assert apply_document(kiosk, kstore.db, sent[name]).version == 2
