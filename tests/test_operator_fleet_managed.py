"""The operator screen of a kiosk whose rules or residents the property office keeps, offscreen: on a kiosk of a fleet
holding the office's policy, the 规则 page says so and shows the rules read-only (the community settings stay its own);
holding the office's registry, the 住户 page says so and changes nothing, while residents and their passes can still be
looked up. A kiosk on its own, one that holds no office document of that kind yet, and the office's own machine keep
the pages as they were. A kiosk without the community's private key issues no pass (nor makes a key of its own)."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("PyQt5.QtWidgets", reason="PyQt5 not installed (pip install 'dabai-kiosk[ui]')")
pytest.importorskip("pytestqt", reason="pytest-qt not installed")

from PyQt5.QtWidgets import QCheckBox  # noqa: E402

from kiosk.config import Config, load_config, replace, save_config  # noqa: E402
from kiosk.fleet.broker import OFFICE  # noqa: E402
from kiosk.store.passes import create_keys  # noqa: E402
from kiosk.ui.operator.policy import SAVE_TEXT  # noqa: E402
from kiosk.ui.operator.texts import OFFICE_POLICY_SAVE  # noqa: E402
from kiosk.ui.operator.widgets import office_versions  # noqa: E402


def join_fleet(home, name="gate-east"):
    """A kiosk's data home after ``fleet join`` (fleet/fleet.json)."""
    home.fleet.mkdir(parents=True, exist_ok=True)
    (home.fleet / "fleet.json").write_text(json.dumps({"community": "sunny", "host": "localhost", "port": 8883,
                                                       "name": name}))


def hold(home, **versions):
    """The versions of the office's documents this kiosk has applied (state/fleet-versions.json)."""
    home.state.mkdir(parents=True, exist_ok=True)
    (home.state / "fleet-versions.json").write_text(json.dumps(versions))


def write_config(home, **policy):
    config = Config()
    for key, value in policy.items():
        config = replace(config, "policy", **{key: value})
    home.root.mkdir(parents=True, exist_ok=True)
    save_config(config, home.config)


@pytest.fixture
def shown(operator_screens):
    return lambda **kwargs: operator_screens(show=True, **kwargs)


def policy_page(qtbot, screen):
    page = screen.show_page("policy")
    qtbot.waitUntil(lambda: page.office_checked, timeout=5000)
    return page


def residents_page(qtbot, screen):
    page = screen.show_page("residents")
    qtbot.waitUntil(lambda: page.office_checked, timeout=5000)
    return page


def assert_policy_editable(page):
    assert not page.office_note.isVisible() and page.office_version == 0
    assert page.rules_hint.isVisible()
    assert all(widget.isEnabled() for widget in page.form.inputs.values())
    assert page.save_button.isEnabled() and page.save_button.text() == SAVE_TEXT


# ---- the 规则 page --------------------------------------------------------------------------------


def test_the_policy_page_is_read_only_with_a_note_where_the_office_keeps_the_rules(qtbot, shown, home):
    write_config(home, cooldown_s=7.5, mask_required=False)
    join_fleet(home)
    hold(home, policy=3, registry=12)
    screen = shown()
    page = policy_page(qtbot, screen)

    assert page.office_note.isVisible() and page.office_version == 3
    text = page.office_note.text()
    assert "本机的通行规则由物业办公室统一下发（第 3 版）" in text and "请在物业办公室修改" in text
    assert not page.rules_hint.isVisible()  # "changes apply at once" is not true here
    for key, widget in page.form.inputs.items():
        assert not widget.isEnabled() and widget.isVisible(), key
    assert page.form.inputs["cooldown_s"].text() == "7.5"  # the values stay readable
    assert isinstance(page.form.inputs["mask_required"], QCheckBox) and not page.form.inputs["mask_required"].isChecked()
    # the community settings are this kiosk's own: still editable, and saved without touching the office's rules
    assert all(widget.isEnabled() for widget in page.community.inputs.values())
    assert page.save_button.text() == OFFICE_POLICY_SAVE and page.save_button.isEnabled()
    page.community.set_value("name", "阳光小区东门")
    page.form.inputs["cooldown_s"].setText("1.0")  # cannot be typed; even if it were, it is not saved
    assert page.save() and not page.note.is_error
    saved = load_config(home.config)
    assert saved.community.name == "阳光小区东门" and saved.policy.cooldown_s == 7.5


def test_the_policy_page_reads_the_office_version_each_time_it_is_shown(qtbot, shown, home):
    write_config(home, cooldown_s=7.5)
    join_fleet(home)  # in the fleet, but no office policy applied yet: the page is as on a kiosk on its own
    screen = shown()
    page = policy_page(qtbot, screen)
    assert_policy_editable(page)

    write_config(home, cooldown_s=4.0)  # the office's policy arrives while the kiosk runs
    hold(home, policy=4)
    screen.show_page("log")
    page.office_checked = False
    page = policy_page(qtbot, screen)
    assert page.office_version == 4 and "第 4 版" in page.office_note.text() and page.office_note.isVisible()
    assert not page.form.inputs["cooldown_s"].isEnabled()
    assert page.form.inputs["cooldown_s"].text() == "4.0"  # the office's value, not the one read when the screen opened
    assert not page.unsaved_changes()


@pytest.mark.parametrize("where", ["on its own", "no office policy yet", "the office's machine"])
def test_the_policy_page_is_unchanged_where_the_office_does_not_keep_the_rules(qtbot, shown, home, where):
    write_config(home, cooldown_s=7.5)
    if where == "on its own":
        hold(home, policy=3, registry=12)  # left over from a fleet it has left: no bundle, its own rules
    elif where == "no office policy yet":
        join_fleet(home)
        hold(home, registry=12)
    else:
        join_fleet(home, name=OFFICE)
        hold(home, policy=3, registry=12)
    page = policy_page(qtbot, shown())
    assert_policy_editable(page)
    assert page.form.inputs["cooldown_s"].text() == "7.5"
    page.form.inputs["cooldown_s"].setText("2.5")
    assert page.save() and load_config(home.config).policy.cooldown_s == 2.5


def test_office_versions(home):
    assert office_versions(home, Config().fleet) == {}
    hold(home, policy=3, registry=12, key=1)
    assert office_versions(home, Config().fleet) == {}  # not in a fleet
    join_fleet(home)
    assert office_versions(home, Config().fleet) == {"policy": 3, "registry": 12}
    hold(home, policy=0, registry=True)
    assert office_versions(home, Config().fleet) == {}
    (home.state / "fleet-versions.json").write_text("{not json")
    assert office_versions(home, Config().fleet) == {}  # unknown: the pages stay as they are
    join_fleet(home, name=OFFICE)
    hold(home, policy=3, registry=12)
    assert office_versions(home, Config().fleet) == {}


# ---- the 住户 page --------------------------------------------------------------------------------


def seed(screen):
    """Residents and a pass as the office's snapshot brings them."""
    registry = screen.ctx.store.registry
    zhang = registry.add("张三", "3-201")
    li = registry.add("李雷", "5-502")
    now = time.time()
    registry.new_pass(zhang.id, now, now + 30 * 86400)
    return zhang, li


def test_the_residents_page_changes_nothing_where_the_office_keeps_the_residents(qtbot, operator_screens, home):
    join_fleet(home)
    hold(home, policy=3, registry=12)
    screen = operator_screens()
    zhang, li = seed(screen)
    screen.show()
    page = residents_page(qtbot, screen)

    assert page.office_note.isVisible() and page.office_version == 12
    assert "本机的住户和通行证由物业办公室统一管理（第 12 版）" in page.office_note.text()
    assert not page.add_button.isEnabled() and not page.new_button.isEnabled()
    # looking up still works: the list, the search, a resident's passes
    assert page.table.rowCount() == 2 and page.search.isEnabled() and page.show_archived.isEnabled()
    page.search.setText("5-502")
    assert [page.table.isRowHidden(row) for row in range(2)] == [True, False]
    page.search.setText("")
    page.select(zhang.id)
    assert page.selected_id() == zhang.id and page.name_edit.text() == "张三" and page.passes.count() == 1
    for button in (page.save_button, page.revoke_button, page.delete_button, page.issue_button):
        assert not button.isEnabled(), button.text()
    page.passes.setCurrentRow(0)
    assert not page.revoke_pass_button.isEnabled()
    assert page.name_edit.isReadOnly() and page.unit_edit.isReadOnly() and page.days_edit.isReadOnly()
    # and an action that gets here anyway changes nothing
    page.name_edit.setText("张三丰")
    assert not page.unsaved_changes()
    assert page.save_edit() is None and page.add() is None and page.issue() is None
    assert page.note.is_error and "物业办公室" in page.note.text()
    assert [(r.name, r.unit) for r in page.registry.list()] == [("张三", "3-201"), ("李雷", "5-502")]
    assert not home.private_key.exists()


def test_the_residents_page_is_unchanged_on_a_kiosk_on_its_own(qtbot, shown, home):
    hold(home, registry=12)  # no bundle: the residents are this kiosk's own
    page = residents_page(qtbot, shown())
    assert not page.office_note.isVisible() and page.office_version == 0
    assert page.add_button.isEnabled() and page.new_button.isEnabled() and not page.name_edit.isReadOnly()
    page.name_edit.setText("张三")
    page.unit_edit.setText("3-201")
    zhang = page.add()
    assert zhang is not None and page.selected_id() == zhang.id
    assert page.save_button.isEnabled() and page.delete_button.isEnabled() and page.issue_button.isEnabled()


def test_the_residents_page_locks_once_the_office_registry_arrives(qtbot, shown, home):
    join_fleet(home)
    hold(home, policy=3)  # the office's rules, not yet its residents
    screen = shown()
    page = residents_page(qtbot, screen)
    assert page.office_version == 0 and not page.office_note.isVisible() and page.add_button.isEnabled()
    page.name_edit.setText("王五")  # typed, not added
    hold(home, policy=3, registry=1)
    screen.show_page("log")
    page.office_checked = False
    page = residents_page(qtbot, screen)
    assert page.office_version == 1 and page.office_note.isVisible() and not page.add_button.isEnabled()
    assert page.name_edit.text() == "" and page.name_edit.isReadOnly()  # what could not be saved is gone


def test_a_kiosk_without_the_private_key_issues_no_pass_and_keeps_the_community_key(qtbot, operator_screens, home):
    create_keys(home.keys / "elsewhere.key", home.public_key)  # the community's key lives at the office
    (home.keys / "elsewhere.key").unlink()
    public = home.public_key.read_bytes()
    screen = operator_screens()
    seed(screen)
    screen.show()
    page = residents_page(qtbot, screen)
    page.select(2)
    assert page.issue() is None and page.note.is_error and "私钥" in page.note.text()
    assert home.public_key.read_bytes() == public and not home.private_key.exists()
    assert page.registry.passes_of(2) == []


def test_the_locked_pages_fit_the_panel(qtbot, shown, home):
    join_fleet(home)
    hold(home, policy=3, registry=12)
    screen = shown()
    policy_page(qtbot, screen)
    residents_page(qtbot, screen)
    hint = screen.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 600, hint
