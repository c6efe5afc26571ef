"""Operator access (issue 10): no operator screen before a PIN is set from the shell or with the one-time setup
code from the console; the lockout kept apart from the PIN so that editing or deleting one file does not reset it;
doctor says when no PIN is set. No Qt needed (the dialog's tests are in test_ui_operator.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from kiosk.ui.operator.pinstore import LOCK_S, MAX_TRIES, SETUP_DIGITS, SETUP_VALID_S, PinStore

pytestmark = pytest.mark.usefixtures("fast_pin_hash")
NOW = 1_000_000.0




def lock_out(store, now=NOW):
    for _ in range(MAX_TRIES):
        result = store.check("0000", now=now)
    assert result.locked_until == now + LOCK_S
    return result


def other(code):
    """A code that differs from ``code`` in its first digit."""
    return str((int(code[0]) + 1) % 10) + code[1:]


# ---- the setup code ---------------------------------------------------------------------------


def test_setup_code_is_random_hashed_private_and_single_use(home):
    store = PinStore.in_home(home)
    code, expires = store.new_setup_code(now=NOW)
    assert len(code) == SETUP_DIGITS and code.isdigit() and expires == NOW + SETUP_VALID_S
    assert store.setup_path.parent == home.state and code not in store.setup_path.read_text()
    assert stat.S_IMODE(os.stat(store.setup_path).st_mode) == 0o600
    assert store.use_setup_code(code, now=NOW + 60).ok
    used = store.use_setup_code(code, now=NOW + 61)  # single use
    assert not used.ok and "no setup code is waiting" in used.error
    assert not store.is_set()  # a code lets the dialog choose the PIN; it sets none itself


def test_setup_code_expires_and_a_new_one_replaces_the_old(home):
    store = PinStore.in_home(home)
    code, _ = store.new_setup_code(now=NOW)
    expired = store.use_setup_code(code, now=NOW + SETUP_VALID_S)
    assert not expired.ok and "expired" in expired.error and not store.setup_path.exists()
    first, _ = store.new_setup_code(now=NOW)
    second, _ = store.new_setup_code(now=NOW)
    if first != second:
        assert not store.use_setup_code(first, now=NOW).ok
    assert store.use_setup_code(second, now=NOW).ok


def test_a_clock_set_back_does_not_keep_a_code_alive(home):
    store = PinStore.in_home(home)
    code, _ = store.new_setup_code(now=NOW)
    assert "expired" in store.use_setup_code(code, now=NOW - 3600).error


def test_wrong_setup_codes_count_toward_the_lock(home):
    store = PinStore.in_home(home)
    code, _ = store.new_setup_code(now=NOW)
    for i in range(MAX_TRIES - 1):
        assert store.use_setup_code(other(code), now=NOW).tries_left == MAX_TRIES - 1 - i
    assert store.use_setup_code(other(code), now=NOW).locked_until == NOW + LOCK_S
    assert store.use_setup_code(code, now=NOW + 1).locked_until is not None  # the right code waits out the lock too
    assert store.use_setup_code(code, now=NOW + LOCK_S + 1).ok


def test_no_setup_code_once_a_pin_is_set(home):
    store = PinStore.in_home(home)
    code, _ = store.new_setup_code(now=NOW)
    store.set_pin("2468")
    assert not store.setup_path.exists()  # setting the PIN drops a pending code
    assert not store.use_setup_code(code, now=NOW).ok
    with pytest.raises(ValueError, match="set already"):
        store.new_setup_code()


# ---- the lockout, apart from the PIN ------------------------------------------------------------


def test_the_lock_survives_a_pin_file_edit_or_replacement(home):
    store = PinStore.in_home(home)
    store.set_pin("2468")
    lock_out(store)
    store.set_pin("1357")  # a new PIN (not through the CLI) resets nothing
    assert store.check("1357", now=NOW + 10).locked_until == NOW + LOCK_S
    record = json.loads(store.path.read_text())
    store.path.write_text(json.dumps(dict(record, failures=0, locked_until=None)))  # an edit by hand
    assert store.status(now=NOW + 10).locked_until == NOW + LOCK_S
    assert store.check("1357", now=NOW + LOCK_S + 1).ok


def test_wrong_tries_survive_a_new_pin(home):
    store = PinStore.in_home(home)
    store.set_pin("2468")
    store.check("0000", now=NOW)
    store.set_pin("1357")
    assert store.status(now=NOW).tries_left == MAX_TRIES - 1


@pytest.mark.parametrize("damage", ["delete", "garbage", "wrong type"])
def test_a_deleted_or_damaged_lockout_file_keeps_the_screen_locked(home, damage):
    store = PinStore.in_home(home)
    store.set_pin("2468")
    lock_out(store)
    if damage == "delete":
        store.lockout_path.unlink()
    elif damage == "garbage":
        store.lockout_path.write_text("{")
    else:
        store.lockout_path.write_text(json.dumps({"failures": "0", "lockouts": 0, "locked_until": None}))
    later = NOW + 10 * LOCK_S  # long after the lock would have passed
    result = store.check("2468", now=later)
    assert not result.ok and "operator reset-lock" in result.error
    assert "operator reset-lock" in store.status(now=later).error
    store.set_pin("2468")  # a new PIN does not bring the lockout file back
    assert not store.check("2468", now=later).ok
    store.reset_lock()
    assert store.check("2468", now=later).ok


def test_a_first_format_pin_file_is_taken_over(home):
    store = PinStore.in_home(home)
    store.set_pin("2468")
    record = json.loads(store.path.read_text())
    del record["lockout_file"]
    store.path.write_text(json.dumps(dict(record, failures=3, lockouts=0, locked_until=None)))  # the old format
    store.lockout_path.unlink()
    assert store.status(now=NOW).tries_left == MAX_TRIES - 3  # its counts carry over
    assert store.check("0000", now=NOW).tries_left == MAX_TRIES - 4
    migrated = json.loads(store.path.read_text())
    assert migrated["lockout_file"] is True and "failures" not in migrated
    assert json.loads(store.lockout_path.read_text())["failures"] == 4
    store.lockout_path.unlink()  # from now on a lost lockout file locks
    assert "reset-lock" in store.check("2468", now=NOW).error


def test_a_fresh_kiosk_has_no_lock(home):
    store = PinStore.in_home(home)
    assert store.status(now=NOW).tries_left == MAX_TRIES and store.status(now=NOW).error is None
    store.set_pin("2468")
    assert store.lockout_path.exists() and json.loads(store.path.read_text())["lockout_file"] is True
    assert store.check("2468", now=NOW).ok


# ---- the command line and doctor ----------------------------------------------------------------


def test_set_pin_and_reset_lock_from_the_shell(home, capsys):
    from kiosk.cli import main

    store = PinStore.in_home(home)
    assert main(["operator", "reset-lock"]) == 0 and "no operator PIN is set yet" in capsys.readouterr().out
    store.set_pin("2468")
    lock_out(store, now=store.clock())
    store.lockout_path.unlink()
    assert main(["operator", "set-pin", "--pin", "1357"]) == 0  # the shell is trusted: a new PIN works at once
    assert "lock cleared" in capsys.readouterr().out and store.check("1357").ok
    lock_out(store, now=store.clock())
    assert main(["operator", "reset-lock"]) == 0 and store.check("1357").ok


def test_doctor_says_when_no_pin_is_set(home, capsys):
    from kiosk.runtime.doctor import _operator_pin

    assert _operator_pin(home) == ("operator PIN", False, "not set — run dabai-kiosk operator set-pin")
    store = PinStore.in_home(home)
    store.set_pin("2468")
    part, ok, detail = _operator_pin(home)
    assert ok and str(store.path) in detail
    lock_out(store, now=store.clock())
    part, ok, detail = _operator_pin(home)
    assert not ok and "locked until" in detail and "operator reset-lock" in detail
    store.lockout_path.unlink()
    part, ok, detail = _operator_pin(home)
    assert not ok and "missing" in detail and "operator reset-lock" in detail


def test_doctor_prints_the_pin_line(home, capsys):
    from kiosk.cli import main

    assert main(["doctor"]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "operator PIN" in line]
    assert lines == ["FIX   operator PIN         not set — run dabai-kiosk operator set-pin"]
    PinStore.in_home(home).set_pin("2468")
    main(["doctor"])
    assert [line for line in capsys.readouterr().out.splitlines() if "operator PIN" in line][0].startswith("ok    ")
