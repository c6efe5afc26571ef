"""Residents, signed passes and every way a pass is refused."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.runtime.assemble import open_store
from kiosk.store.passes import (
    MAX_DAYS,
    PREFIX,
    TOKEN_LEN,
    KeyFileError,
    PassVerifier,
    create_keys,
    issue_pass,
    key_id,
    load_public_key,
    parse_token,
    sign_token,
)
from kiosk.store.registry import MAX_ID, RegistryError

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


def test_unknown_pass_and_unknown_resident(world):
    store, key, verifier = world
    # Genuinely signed and unexpired, but this kiosk was never told about serial 77.
    token = sign_token(key, 4242, 77, int(NOW), int(NOW + 3600))
    check = verifier.check(token, NOW)
    assert (check.valid, check.reason, check.serial) == (False, "unknown_pass", 77)
    r = store.registry.add("张三", "3-201")
    assert verifier.check(sign_token(key, r.id, 78, int(NOW), int(NOW + 3600)), NOW).reason == "unknown_pass"
    # A pass row whose resident is gone (a damaged or hand-edited database).
    store.db.execute("PRAGMA foreign_keys=OFF")
    store.db.execute("INSERT INTO passes(serial, resident_id, issued_at, expires_at) VALUES (77, 4242, ?, ?)",
                     (NOW, NOW + 3600))
    assert verifier.check(token, NOW).reason == "unknown_resident"


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


# ---- one spelling per pass --------------------------------------------------------------------------


def _respellings(token):
    """Other spellings of the same signed bytes, each of which an ordinary base64 decoder accepts."""
    b64 = token[len(PREFIX):]
    blob = base64.urlsafe_b64decode(b64 + "=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(b64[-1])
    return {
        "padding": token + "=",
        "standard alphabet": PREFIX + base64.b64encode(blob).decode(),
        "leading space": " " + token,
        "trailing newline": token + "\n",
        "inner whitespace": token[:40] + " \t" + token[40:],
        "inserted junk": token[:50] + "!" + token[50:],
        "inserted dot": token[:60] + "." + token[60:],
        "last character low bits": token[:-1] + alphabet[last | 1],
        "lower-case prefix": PREFIX.lower() + b64,
        "zero-width space": token[:30] + "\u200b" + token[30:],
        "full-width letter": token[:-2] + "\uff21" + token[-1],
    }


@pytest.mark.parametrize("kind", sorted(_respellings(PREFIX + "A" * 119)))
def test_only_the_canonical_spelling_verifies(world, kind):
    store, key, verifier = world
    r = store.registry.add("张三", "3-201")
    _, token = issue_pass(store.registry, key, r.id, 365, NOW)
    assert len(token) == TOKEN_LEN and verifier.check(token, NOW).valid
    other = _respellings(token)[kind]
    assert other != token
    assert verifier.check(other, NOW).reason == "malformed"


@pytest.mark.parametrize("fields", [(0, 5, 0, 3600), (1, 0, 0, 3600), (1, 5, 3600, 3600), (1, 5, 3600, 10)])
def test_impossible_fields_are_malformed_even_when_signed(world, fields):
    _, key, verifier = world
    resident, serial, issued, expires = fields
    token = sign_token(key, resident, serial, int(NOW) + issued, int(NOW) + expires)
    assert parse_token(token) is None and verifier.check(token, NOW).reason == "malformed"


# ---- issuing within the pass's fields ---------------------------------------------------------------


def _pass_rows(store):
    return store.db.query("SELECT COUNT(*) AS n FROM passes")[0]["n"]


@pytest.mark.parametrize("days", [float("nan"), float("inf"), float("-inf"), 0, -1, 1e-9, MAX_DAYS + 1, 100000,
                                  True, "30"])
def test_days_out_of_bounds_is_refused_and_nothing_is_written(world, days):
    store, key, _ = world
    r = store.registry.add("张三", "3-201")
    with pytest.raises(RegistryError, match="days"):
        issue_pass(store.registry, key, r.id, days, NOW)
    assert _pass_rows(store) == 0


def test_longest_and_fractional_validity_are_allowed(world):
    store, key, verifier = world
    r = store.registry.add("张三", "3-201")
    serial, token = issue_pass(store.registry, key, r.id, MAX_DAYS, NOW)
    assert store.registry.get_pass(serial).expires_at == int(NOW) + MAX_DAYS * 86400
    _, token = issue_pass(store.registry, key, r.id, 0.5, NOW)
    assert verifier.check(token, NOW + 3600).valid and verifier.check(token, NOW + 43200).reason == "expired"


def test_expiry_past_the_32_bit_field_is_refused(world):
    store, key, _ = world
    r = store.registry.add("张三", "3-201")
    with pytest.raises(RegistryError, match="2106"):
        issue_pass(store.registry, key, r.id, 30, MAX_ID - 86400)
    assert _pass_rows(store) == 0


def test_ids_past_the_32_bit_fields_are_refused_before_a_row_is_written(world):
    store, key, _ = world
    store.db.execute("INSERT INTO residents(id, name, unit, status, created_at) VALUES (?, '张三', '1-1', 'active', 0)",
                     (MAX_ID + 1,))
    with pytest.raises(RegistryError, match="resident id 4294967296 does not fit a pass's 32-bit field"):
        issue_pass(store.registry, key, MAX_ID + 1, 30, NOW)
    assert _pass_rows(store) == 0
    with pytest.raises(RegistryError, match="32-bit"):
        store.registry.add("李四", "2-2")  # the next resident id would not fit either
    store.db.execute("DELETE FROM residents")
    ok = store.db.execute("INSERT INTO residents(id, name, unit, status, created_at) VALUES (7, '王五', '1-1', 'active', 0)")
    store.db.execute("INSERT INTO passes(serial, resident_id, issued_at, expires_at) VALUES (?, ?, 0, 1)", (MAX_ID, ok))
    with pytest.raises(RegistryError, match="serial 4294967296"):
        issue_pass(store.registry, key, ok, 30, NOW)
    assert _pass_rows(store) == 1


def test_serials_and_ids_can_be_kept_above_a_floor(world):
    store, key, _ = world
    r = store.registry.add("张三", "3-201", min_id=10)
    assert r.id == 10 and store.registry.add("李四", "5-502").id == 11
    assert issue_pass(store.registry, key, r.id, 30, NOW, min_serial=5)[0] == 5
    assert issue_pass(store.registry, key, r.id, 30, NOW)[0] == 6


@pytest.mark.parametrize("serial", [0, -1, MAX_ID + 1, 2**70])
def test_revoking_a_serial_out_of_range_is_a_clear_error(world, serial):
    store, _, _ = world
    with pytest.raises(RegistryError, match="between 1 and"):
        store.registry.revoke_pass(serial)


def test_revoking_an_unknown_serial_is_a_clear_error(world):
    store, _, _ = world
    with pytest.raises(RegistryError, match="no pass with serial 9"):
        store.registry.revoke_pass(9)


def test_huge_resident_ids_are_not_found_rather_than_crash(world):
    store, _, _ = world
    for ref in ("4294967296", "9" * 30, "0"):
        with pytest.raises(RegistryError, match="no resident with id"):
            store.registry.resolve(ref)
