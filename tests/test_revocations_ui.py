"""The operator screen's revoke buttons sign the revocation list as the commands do."""

from __future__ import annotations

from types import SimpleNamespace

from kiosk.config import Config
from kiosk.runtime.assemble import open_store, pass_checker
from kiosk.store.passes import load_public_key
from kiosk.store.revocations import load_list, seen_version


def residents_page(qtbot, home, store, monkeypatch):
    from kiosk.ui.operator import residents
    from kiosk.ui.operator.residents import ResidentsPage

    monkeypatch.setattr(residents, "confirm", lambda *a, **k: True)  # every confirmation answered yes
    page = ResidentsPage(SimpleNamespace(home=home, store=store, config=Config(), record=lambda *a, **k: False))
    qtbot.addWidget(page)
    page.on_show()
    return page


def test_revoke_buttons_add_to_the_signed_list_and_reinstating_removes_the_resident(qtbot, home, monkeypatch):
    store = open_store(home)
    try:
        page = residents_page(qtbot, home, store, monkeypatch)
        page.name_edit.setText("张三")
        page.unit_edit.setText("3-201")
        page.add()
        token = page.issue()
        check = pass_checker(home, store.registry)
        assert token and check(token).valid
        page.passes.setCurrentRow(0)
        page.revoke_pass_button.click()
        listed = load_list(home, load_public_key(home.public_key))
        assert listed.version == 1 and listed.passes == {1} and not page.note.is_error
        assert check(token).reason == "pass_revoked"
        second = page.issue()
        page.revoke_button.click()  # revoke the resident
        assert load_list(home, load_public_key(home.public_key)).residents == {1}
        assert check(second).reason == "resident_revoked"
        page.revoke_button.click()  # reinstate: a new version without them; the revoked pass stays revoked
        listed = load_list(home, load_public_key(home.public_key))
        assert (listed.version, listed.residents, listed.passes) == (3, frozenset(), frozenset({1}))
        assert check(second).valid and check(token).reason == "pass_revoked"
    finally:
        store.close()


def test_without_the_private_key_the_screen_says_the_list_was_not_updated(qtbot, home, monkeypatch):
    store = open_store(home)
    try:
        page = residents_page(qtbot, home, store, monkeypatch)
        page.name_edit.setText("李四")
        page.unit_edit.setText("5-502")
        page.add()
        assert page.issue()
        home.private_key.unlink()  # a kiosk that only verifies
        page.revoke_button.click()
        assert page.note.is_error and "revocation list was not updated" in page.note.text()
        assert not store.registry.get(1).active and seen_version(home) == 0
        page.revoke_button.click()  # reinstating: not on any list, so the database alone decides
        assert store.registry.get(1).active
    finally:
        store.close()
