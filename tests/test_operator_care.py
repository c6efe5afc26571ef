"""The operator screen is correct and careful (issue 13, item 5): the pass preview only shows the selected
resident's pass, destructive actions are confirmed naming whom they affect, duplicates are warned about,
residents can be deleted or archived, unsaved edits are not dropped silently, actions need a selection,
files go only to USB sticks or the export folder, and every change is an operator record in the access log."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PyQt5.QtWidgets", reason="PyQt5 not installed (pip install 'dabai-kiosk[ui]')")
pytest.importorskip("pytestqt", reason="pytest-qt not installed")

from PyQt5.QtCore import QTimer  # noqa: E402
from PyQt5.QtWidgets import QApplication, QMessageBox  # noqa: E402

from kiosk.ui.operator import (
    OperatorScreen,  # noqa: E402
    widgets,  # noqa: E402
)
from kiosk.ui.operator import residents as residents_module  # noqa: E402
from kiosk.ui.operator import screen as screen_module  # noqa: E402


class Answers:
    """Stands in for :func:`widgets.confirm`: answers from a queue (default yes) and keeps the questions."""

    def __init__(self) -> None:
        self.asked = []
        self.queue = []

    def __call__(self, parent, question, action, detail=""):
        self.asked.append(question)
        return self.queue.pop(0) if self.queue else True


@pytest.fixture
def answers(monkeypatch):
    a = Answers()
    for module in (residents_module, screen_module, widgets):
        monkeypatch.setattr(module, "confirm", a)
    return a


@pytest.fixture
def records():
    return []


@pytest.fixture
def screen(operator_screens, records):
    return operator_screens(show=True, record=lambda d: records.append(d) or d)


def add(page, name, unit):
    page.new_resident()
    page.name_edit.setText(name)
    page.unit_edit.setText(unit)
    return page.add()


def select(page, resident_id):
    page.select(resident_id)
    assert page.selected_id() == resident_id


def test_the_preview_shows_only_the_selected_residents_new_pass(screen, answers):
    page = screen.show_page("residents")
    zhang = add(page, "张三", "3-201")
    li = add(page, "李雷", "5-502")
    assert page.issue()
    assert page.card_resident == li.id and page.qr_label.isVisible() and page.print_button.isEnabled()
    select(page, zhang.id)
    assert page.card is None and not page.qr_label.isVisible()
    assert not page.png_button.isEnabled() and not page.print_button.isEnabled()
    select(page, li.id)  # coming back does not bring another pass's QR up either
    assert page.card is None
    page.issue()
    page.passes.setCurrentRow(0)  # the newest pass, the one on screen
    page.revoke_pass_button.click()
    assert page.card is None and "#2" in page.note.text()


def test_destructive_actions_are_confirmed_naming_whom_they_affect(screen, answers):
    page = screen.show_page("residents")
    zhang = add(page, "张三", "3-201")
    page.issue()
    answers.queue = [False]
    page.revoke_button.click()
    assert page.registry.get(zhang.id).active and "张三" in answers.asked[-1]
    page.passes.setCurrentRow(0)
    answers.queue = [False]
    page.revoke_pass_button.click()
    assert page.registry.passes_of(zhang.id)[0].revoked_at is None and "#1" in answers.asked[-1]
    page.revoke_pass_button.click()
    assert page.registry.passes_of(zhang.id)[0].revoked_at is not None
    page.revoke_button.click()
    assert not page.registry.get(zhang.id).active


def test_a_real_dialog_defaults_to_cancel_and_confirms_on_its_action_button(qtbot, home):
    """widgets.confirm itself: Esc (the default, Cancel) says no; the action button says yes."""
    parent = widgets.QWidget()
    qtbot.addWidget(parent)

    def press(text_start):
        def go():
            box = QApplication.activeModalWidget()
            assert isinstance(box, QMessageBox) and "张三" in box.text()
            if text_start is None:
                box.defaultButton().click()
                return
            [button] = [b for b in box.buttons() if b.text().startswith(text_start)]
            assert button.width() >= 60 and button.height() >= 54  # a finger's width on the panel
            button.click()
        QTimer.singleShot(50, go)

    press(None)
    assert widgets.confirm(parent, "停用住户 张三？", "停用 Revoke") is False
    press("停用")
    assert widgets.confirm(parent, "停用住户 张三？", "停用 Revoke") is True


def test_a_duplicate_resident_is_warned_about(screen, answers):
    page = screen.show_page("residents")
    add(page, "张三", "3-201")
    answers.queue = [False]
    assert add(page, "张三", " 3-201 ") is None  # same after the registry's space clean-up
    assert len(page.registry.list()) == 1 and "3-201" in answers.asked[-1]
    assert page.selected_id() == 1  # the existing one is shown instead
    answers.queue = [True]
    assert add(page, "张三", "3-201") is not None
    assert len(page.registry.list()) == 2


def test_delete_a_resident_without_passes_archive_one_with(screen, answers, home):
    from kiosk.runtime.assemble import pass_checker

    page = screen.show_page("residents")
    typo = add(page, "张三三", "3-201")
    assert page.delete_button.text().startswith("删除")
    page.delete_button.click()
    assert page.registry.find(typo.id) is None and "张三三" in answers.asked[-1]
    li = add(page, "李雷", "5-502")
    assert li.id == typo.id + 1  # a deleted id is never handed out again
    token = page.issue()
    assert page.delete_button.text().startswith("归档")
    page.delete_button.click()
    archived = page.registry.get(li.id)
    assert archived.archived and not archived.active
    assert pass_checker(home, page.registry)(token).reason == "resident_revoked"
    visible = [page.table.item(r, 0).text() for r in range(page.table.rowCount())]
    assert str(li.id) not in visible
    page.show_archived.setChecked(True)
    select(page, li.id)
    assert page.delete_button.text().startswith("取消归档") and not page.issue_button.isEnabled()
    page.delete_button.click()
    assert not page.registry.get(li.id).archived


def test_unsaved_edits_are_not_dropped_without_asking(screen, answers):
    page = screen.show_page("residents")
    zhang = add(page, "张三", "3-201")
    li = add(page, "李雷", "5-502")
    select(page, zhang.id)
    page.name_edit.setText("张三丰")
    answers.queue = [False]
    select_attempt = page.select
    select_attempt(li.id)
    assert page.selected_id() == zhang.id and page.name_edit.text() == "张三丰"  # kept, still on 张三
    answers.queue = [False]
    assert screen.go_to("policy") is None and screen.current == "residents"
    assert "住户" in answers.asked[-1]
    answers.queue = [True]
    assert screen.go_to("policy") is not None
    policy = screen.pages["policy"]
    policy.form.set_value("cooldown_s", 9.5)
    assert policy.unsaved_changes()
    closed = []
    screen.closed.connect(lambda: closed.append(1))
    answers.queue = [False]
    screen.exit_button.click()
    assert not closed and screen.current == "policy"
    policy.save()
    assert not policy.unsaved_changes()
    screen.exit_button.click()
    assert closed


def test_actions_that_need_a_selection_are_off_until_there_is_one(screen, answers):
    page = screen.show_page("residents")
    for button in (page.issue_button, page.revoke_button, page.save_button, page.delete_button, page.revoke_pass_button):
        assert not button.isEnabled(), button.text()
    add(page, "张三", "3-201")
    assert page.issue_button.isEnabled() and page.revoke_button.isEnabled()
    page.issue()
    assert not page.revoke_pass_button.isEnabled()
    page.passes.setCurrentRow(0)
    assert page.revoke_pass_button.isEnabled()
    page.revoke_pass_button.click()
    page.passes.setCurrentRow(0)
    assert not page.revoke_pass_button.isEnabled()  # already revoked


def test_files_go_only_to_usb_sticks_or_the_export_folder(qtbot, home, tmp_path, monkeypatch):
    media = tmp_path / "media"
    stick = media / "kiosk" / "U盘"
    stick.mkdir(parents=True)
    monkeypatch.setattr(widgets, "MEDIA_ROOTS", (media,))
    places = widgets.export_places(home.root, str(tmp_path / "exports-configured"))
    assert [p for _, p in places] == [stick, tmp_path / "exports-configured", home.root / "exports"]
    assert places[0][0].startswith("U 盘")
    dialog = widgets.ExportDialog(None, "保存", places, "pass-1.png")
    qtbot.addWidget(dialog)
    dialog.name.setText("../../etc/passwd")
    dialog.save_button.click()
    assert dialog.path is None and dialog.error.text()
    dialog.name.setText("张三的通行证")
    dialog.save_button.click()
    assert dialog.path == stick / "张三的通行证.png"


def test_every_change_is_an_operator_record(screen, answers, records, monkeypatch, tmp_path):
    page = screen.show_page("residents")
    zhang = add(page, "张三", "3-201")
    page.issue()
    monkeypatch.setattr(residents_module, "choose_export_path", lambda *a, **k: tmp_path / "p.png")
    page.png_button.click()
    assert (tmp_path / "p.png").stat().st_size > 1000
    page.passes.setCurrentRow(0)
    page.revoke_pass_button.click()
    page.revoke_button.click()
    assert [d.outcome for d in records] == ["operator"] * 5
    assert [d.reason.split(":")[0] for d in records] == [
        "resident_added", "pass_issued", "pass_saved", "pass_revoked", "resident_revoked"]
    assert all(d.resident_id == zhang.id for d in records)
    assert records[1].pass_serial == 1 and records[3].pass_serial == 1 and not any(d.gate_opened for d in records)
    screen.go_to("policy")
    screen.pages["policy"].form.set_value("cooldown_s", 9.5)
    screen.pages["policy"].save()
    assert records[-1].reason == "settings_saved: community, policy"


def test_records_reach_the_real_access_log(qtbot, home):
    """Through the access log the app lends: chained, durable, listed as operator rows."""
    from kiosk.runtime.assemble import open_store

    store = open_store(home, writer=True)
    try:
        s = OperatorScreen(home, lambda: {}, record=lambda d: store.access_log.append(d, durable=True))
        qtbot.addWidget(s)
        assert s.ctx.record("gate_test", "200 ms", gate_opened=True)
        [row] = [r for r in store.access_log.list() if r["outcome"] == "operator"]
        assert row["reason"] == "gate_test: 200 ms" and row["gate_opened"] and row["seq"] >= 1  # in the chain
        s.close_screen()
    finally:
        store.close()


def test_an_old_database_gets_the_archive_column(tmp_path):
    import sqlite3

    from kiosk.store.db import Database
    from kiosk.store.registry import Registry

    path = tmp_path / "old.db"
    conn = sqlite3.connect(str(path))
    conn.executescript("CREATE TABLE residents (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, unit TEXT NOT "
                       "NULL, status TEXT NOT NULL DEFAULT 'active', created_at REAL NOT NULL);"
                       "INSERT INTO residents(name, unit, created_at) VALUES ('张三', '3-201', 0);")
    conn.close()
    db = Database(Path(path))
    try:
        r = Registry(db).get(1)
        assert r.name == "张三" and not r.archived
    finally:
        db.close()


def test_a_chinese_name_and_a_unit_are_typed_on_the_screen_keyboard(qtbot, screen, answers):
    """No physical keyboard: tap the field, tap pinyin keys, tap the name; the unit field opens the number pad."""
    from PyQt5.QtCore import Qt

    page = screen.show_page("residents")
    keyboard = screen.keyboard
    qtbot.mouseClick(page.name_edit, Qt.LeftButton)
    assert keyboard.isVisible() and keyboard.layout_name == "pinyin"
    for letter in "zhangsan":
        qtbot.mouseClick(keyboard.key(letter), Qt.LeftButton)
    qtbot.mouseClick(keyboard.candidate_button("张三"), Qt.LeftButton)
    assert page.name_edit.text() == "张三"
    qtbot.mouseClick(page.unit_edit, Qt.LeftButton)
    assert keyboard.layout_name == "digits"
    for key in "3-201":
        qtbot.mouseClick(keyboard.key(key), Qt.LeftButton)
    assert page.unit_edit.text() == "3-201"
    qtbot.mouseClick(page.add_button, Qt.LeftButton)
    assert [(r.name, r.unit) for r in page.registry.list()] == [("张三", "3-201")]
    assert not keyboard.isVisible()  # a button took the focus: the keyboard went away


def test_the_command_line_lists_operator_actions(qtbot, home, capsys):
    from kiosk.cli import main
    from kiosk.runtime.assemble import open_store

    store = open_store(home, writer=True)
    try:
        s = OperatorScreen(home, lambda: {}, record=lambda d: store.access_log.append(d, durable=True))
        qtbot.addWidget(s)
        s.ctx.record("remote_open", "快递", gate_opened=True)
        s.close_screen()
    finally:
        store.close()
    capsys.readouterr()
    assert main(["log", "list", "--outcome", "operator"]) == 0
    out = capsys.readouterr().out
    assert "remote_open: 快递" in out and "operator" in out
