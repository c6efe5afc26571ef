"""Residents, signed passes and every way a pass is refused."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.runtime.assemble import open_store
from kiosk.store.passes import (
    PREFIX,
    KeyFileError,
    PassVerifier,
    create_keys,
    issue_pass,
    key_id,
    load_public_key,
    parse_token,
    sign_token,
)
from kiosk.store.registry import RegistryError

NOW = 1_790_000_000.0


@pytest.fixture
def world(home):
    store = open_store(home)
    key = create_keys(home.private_key, home.public_key)
    verifier = PassVerifier(load_public_key(home.public_key), store.registry)
    yield store, key, verifier
    store.close()


def test_private_key_is_owner_only_and_never_overwritten(home):
    create_keys(home.private_key, home.public_key)
    assert stat.S_IMODE(os.stat(home.private_key).st_mode) == 0o600
    with pytest.raises(KeyFileError):
        create_keys(home.private_key, home.public_key)


def test_valid_pass_names_the_resident(world):
    store, key, verifier = world
    r = store.registry.add("张三", "3-201")
    serial, token = issue_pass(store.registry, key, r.id, 365, NOW)
    assert token.startswith(PREFIX) and len(token) < 140
    check = verifier.check(token, NOW + 10)
    assert (check.valid, check.reason, check.resident_name, check.serial) == (True, "ok", "张三", serial)


@pytest.mark.parametrize("payload", ["", "hello", PREFIX, PREFIX + "!!!", PREFIX + "A" * 40, "DABAI2.xxxx",
                                     "\x00\xff" * 50, PREFIX + "A" * 2000, "http://example.com/?" + "a" * 100])
def test_garbage_is_malformed(world, payload):
    _, _, verifier = world
    assert verifier.check(payload, NOW).reason == "malformed"


def test_tampered_payload_is_bad_signature(world):
    store, key, verifier = world
    r = store.registry.add("张三", "3-201")
    _, token = issue_pass(store.registry, key, r.id, 365, NOW)
    other = store.registry.add("李四", "5-502")
    # Re-sign nothing, just change the resident id inside the body: the signature no longer matches.
    parsed = parse_token(token)
    assert parsed is not None
    forged = sign_token(key, other.id, 1, int(NOW), int(NOW + 86400))
    body_of_forged = parse_token(forged)[1]
    import base64

    blob = body_of_forged + parsed[2]  # other body, original signature
    tampered = PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    assert verifier.check(tampered, NOW).reason == "bad_signature"


def test_forged_with_our_key_id_is_bad_signature(world):
    store, key, verifier = world
    r = store.registry.add("张三", "3-201")
    attacker = Ed25519PrivateKey.generate()
    token = sign_token(attacker, r.id, 1, int(NOW), int(NOW + 3600), claimed_key_id=key_id(key.public_key()))
    assert verifier.check(token, NOW).reason == "bad_signature"


def test_another_communitys_pass_is_named_as_such(world):
    store, _, verifier = world
    r = store.registry.add("张三", "3-201")
    elsewhere = Ed25519PrivateKey.generate()
    token = sign_token(elsewhere, r.id, 1, int(NOW), int(NOW + 3600))
    assert verifier.check(token, NOW).reason == "wrong_community"


def test_expired_and_not_yet_valid(world):
    store, key, verifier = world
    r = store.registry.add("张三", "3-201")
    _, token = issue_pass(store.registry, key, r.id, 1, NOW)
    assert verifier.check(token, NOW + 86400 + 1).reason == "expired"
    assert verifier.check(token, NOW - 3600).reason == "not_yet_valid"
    assert verifier.check(token, NOW - 60).valid  # small clock skew is tolerated


def test_revoked_pass(world):
    store, key, verifier = world
    r = store.registry.add("张三", "3-201")
    serial, token = issue_pass(store.registry, key, r.id, 30, NOW)
    store.registry.revoke_pass(serial)
    assert verifier.check(token, NOW).reason == "pass_revoked"


def test_unknown_resident(world):
    _, key, verifier = world
    token = sign_token(key, 4242, 77, int(NOW), int(NOW + 3600))
    check = verifier.check(token, NOW)
    assert (check.valid, check.reason) == (False, "unknown_resident")


def test_revoked_resident_and_reinstated(world):
    store, key, verifier = world
    r = store.registry.add("王五", "1-101")
    _, token = issue_pass(store.registry, key, r.id, 30, NOW)
    store.registry.revoke("王五")
    assert verifier.check(token, NOW).reason == "resident_revoked"
    store.registry.reinstate(str(r.id))
    assert verifier.check(token, NOW).valid


def test_cannot_issue_for_revoked_resident(world):
    store, key, _ = world
    r = store.registry.add("王五", "1-101")
    store.registry.revoke(str(r.id))
    with pytest.raises(RegistryError, match="revoked"):
        issue_pass(store.registry, key, r.id, 30, NOW)


def test_resident_names_and_lookup(world):
    store, _, _ = world
    reg = store.registry
    a = reg.add(" 张三 ", "3-201")
    assert a.name == "张三"
    reg.add("张三", "4-402")
    with pytest.raises(RegistryError, match="give the id"):
        reg.resolve("张三")
    assert reg.resolve(str(a.id)).unit == "3-201"
    with pytest.raises(RegistryError):
        reg.resolve("nobody")
    for name, unit in (("", "1-1"), ("x", ""), ("x" * 65, "1-1"), ("x", "u" * 300), ("a\x07b", "1")):
        with pytest.raises(RegistryError):
            reg.add(name, unit)
    assert len(reg.list()) == 2


def test_missing_public_key_is_a_clear_error(home):
    with pytest.raises(KeyFileError, match="no community public key"):
        load_public_key(home.public_key)
    home.keys.mkdir(parents=True)
    home.public_key.write_text("garbage")
    with pytest.raises(KeyFileError, match="not a usable public key"):
        load_public_key(home.public_key)



def test_update_resident_checks_like_add(world):
    store, _, _ = world
    r = store.registry.add("张三", "3-201")
    assert store.registry.update(r.id, " 张三丰 ", "3-202").name == "张三丰"
    assert store.registry.get(r.id).unit == "3-202"
    for name, unit in (("", "3-202"), ("张三", "x" * 300)):
        with pytest.raises(RegistryError):
            store.registry.update(r.id, name, unit)
    assert store.registry.get(r.id).name == "张三丰"
    with pytest.raises(RegistryError, match="no resident"):
        store.registry.update(9999, "李四", "1-101")
