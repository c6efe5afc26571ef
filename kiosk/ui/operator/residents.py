"""Residents page: add, edit, revoke, reinstate, delete or archive residents; issue a pass and save or print it.

The registry (:mod:`kiosk.store.registry`) and :func:`kiosk.store.passes.issue_pass` do the work, as they
do for ``dabai-kiosk residents`` and ``dabai-kiosk pass issue``; this page only shows and asks. Whatever
cannot be undone (revoking, deleting, archiving) is confirmed first, naming whom it affects; every change is
written to the access log as an operator action. The pass preview only ever shows the selected resident's
newly issued pass.

On a kiosk of a fleet that holds the property office's registry (:func:`~kiosk.ui.operator.widgets.office_versions`,
read each time the page is shown), residents and passes are the office's: its next change replaces them whole. The
page then says so at the top and changes nothing; residents and their passes can still be looked up. A kiosk without
the community's private key issues no pass (it would have made a key of its own, and replaced the community's).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Dict, Optional

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QColor, QFont, QImage, QPainter, QPixmap
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kiosk.config import CommunityConfig
from kiosk.store.passes import pass_card_lines
from kiosk.store.registry import Registry, RegistryError, Resident
from kiosk.store.revocations import next_free_ids
from kiosk.ui.operator.texts import OFFICE_REGISTRY_NOTE, OFFICE_REGISTRY_REFUSED, office_note
from kiosk.ui.operator.widgets import (
    Note,
    OneAtATime,
    Page,
    choose_export_path,
    cjk_font,
    confirm,
    explain,
    give_focus_back,
    heading,
    hint,
    office_note_label,
    office_versions,
    scrolling,
    set_role,
    show_office_note,
)

try:  # QtPrintSupport is part of PyQt5's wheels, but some distribution builds split it out
    from PyQt5.QtPrintSupport import QPrintDialog, QPrinter
except ImportError:  # pragma: no cover - depends on the PyQt5 build
    QPrintDialog = QPrinter = None

log = logging.getLogger(__name__)

_DAYS = {f.name: f for f in dataclasses.fields(CommunityConfig)}["pass_days"].metadata


def active_pass_counts(registry: Registry, now: float) -> Dict[int, int]:
    """resident id → passes neither revoked nor expired, in one query (a community has thousands)."""
    rows = registry.db.query(
        "SELECT resident_id, COUNT(*) AS n FROM passes WHERE revoked_at IS NULL AND expires_at > ? GROUP BY resident_id",
        (now,))
    return {int(r["resident_id"]): int(r["n"]) for r in rows}


def parse_days(text: str) -> float:
    """Validity in days from the operator's text; ValueError in the config's words when it is not allowed."""
    lo, hi = _DAYS["min"], _DAYS["max"]
    try:
        days = float(text.strip())
    except ValueError:
        raise ValueError("days = {!r}: must be a number".format(text)) from None
    if not lo <= days <= hi:  # also refuses nan
        raise ValueError("days = {!r}: must be between {} and {}".format(text, lo, hi))
    return days


def render_pass_card(token: str, community: str, resident: Resident, serial: int, expires_at: float) -> QImage:
    """The pass as a printable card: the QR code (segno) with the community, name, unit and expiry under it."""
    from kiosk.vision.qr import render_qr

    qr = render_qr(token, scale=8, border=4)
    h, w = qr.shape
    qimage = QImage(qr.data, w, h, qr.strides[0], QImage.Format_Grayscale8).copy()
    card = QImage(w, h + 132, QImage.Format_RGB32)
    card.fill(QColor("white"))
    painter = QPainter(card)
    painter.drawImage(0, 0, qimage)
    painter.setPen(QColor("black"))
    title, who, number = pass_card_lines(community, resident.name, resident.unit, serial, expires_at)  # as the CLI prints
    font = cjk_font()
    font.setPixelSize(24)
    font.setWeight(QFont.Bold)
    painter.setFont(font)
    painter.drawText(0, h, w, 36, Qt.AlignHCenter | Qt.AlignVCenter, title)
    font.setPixelSize(20)
    font.setWeight(QFont.Normal)
    painter.setFont(font)
    painter.drawText(0, h + 38, w, 30, Qt.AlignHCenter | Qt.AlignVCenter, who)
    painter.drawText(0, h + 72, w, 30, Qt.AlignHCenter | Qt.AlignVCenter, number)
    painter.end()
    return card


class ResidentsPage(Page):
    name = "residents"
    title = "住户 Residents"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.card: Optional[QImage] = None
        self.card_resident: Optional[int] = None  # whose pass the preview shows; it is cleared for anyone else
        self.card_serial: Optional[int] = None
        self.token: Optional[str] = None
        self.card_name = "pass.png"
        self._shown: Optional[int] = None  # the resident whose name and unit the form holds
        self.office_note = office_note_label()
        self.office_version = 0  # the office's registry version this kiosk holds (0: residents are its own)
        self.office_checked = False  # whether a read of the version has answered yet
        self._office_reads = OneAtATime()

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["编号 ID", "姓名 Name", "房号 Unit", "状态 Status", "通行证 Passes"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        self.passes = QListWidget()
        self.passes.setMaximumHeight(120)
        self.passes.currentItemChanged.connect(lambda *_: self._enable_pass_actions())
        self.revoke_pass_button = QPushButton("注销所选通行证 Revoke pass")
        self.revoke_pass_button.setProperty("danger", True)
        self.revoke_pass_button.clicked.connect(self.revoke_selected_pass)
        self.show_archived = QCheckBox("显示已归档 Show archived")
        self.show_archived.toggled.connect(lambda _: self.refresh())

        self.search = QLineEdit()
        self.search.setPlaceholderText("搜索姓名、房号或编号 Search name, unit or id")
        self.search.textChanged.connect(self._filter)
        left = QVBoxLayout()
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.show_archived)
        left.addLayout(top)
        left.addWidget(self.table, 1)
        left.addWidget(hint("所选住户的通行证 Passes of the selected resident"))
        left.addWidget(self.passes)
        left.addWidget(self.revoke_pass_button)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("例如 张三 e.g.")
        self.unit_edit = QLineEdit()
        self.unit_edit.setPlaceholderText("例如 3-201 e.g.")
        self.unit_edit.setProperty("keyboard", "digits")
        self.name_error = self._error_label()
        self.unit_error = self._error_label()
        self.new_button = QPushButton("新住户 New")
        self.new_button.clicked.connect(self.new_resident)
        self.add_button = QPushButton("新增 Add")
        self.add_button.setProperty("accent", True)
        self.add_button.clicked.connect(self.add)
        self.save_button = QPushButton("保存修改 Save")
        self.save_button.clicked.connect(self.save_edit)
        self.revoke_button = QPushButton("停用 Revoke")
        self.revoke_button.setProperty("danger", True)
        self.revoke_button.clicked.connect(self.toggle_revoked)
        self.delete_button = QPushButton("删除 Delete")
        self.delete_button.setProperty("danger", True)
        self.delete_button.clicked.connect(self.delete_or_archive)
        self.days_edit = QLineEdit()
        self.days_edit.setProperty("keyboard", "digits")
        self.days_edit.setPlaceholderText("{} … {}".format(_DAYS["min"], _DAYS["max"]))
        self.days_error = self._error_label()
        self.issue_button = QPushButton("签发通行证 Issue pass")
        self.issue_button.setProperty("accent", True)
        self.issue_button.clicked.connect(self.issue)
        self.qr_label = QLabel()
        self.qr_label.setAlignment(Qt.AlignCenter)
        self.png_button = QPushButton("保存 PNG")
        self.png_button.clicked.connect(self._ask_png)
        self.print_button = QPushButton("打印 Print")
        self.print_button.clicked.connect(self.print_card)
        if QPrinter is None:
            self.print_button.setToolTip("QtPrintSupport is not available in this PyQt5 build")
        self.note = Note()

        form = QGridLayout()
        form.setVerticalSpacing(2)
        form.addWidget(QLabel("<b>姓名</b> Name"), 0, 0)
        form.addWidget(self.name_edit, 0, 1)
        form.addWidget(self.name_error, 1, 0, 1, 2)
        form.addWidget(QLabel("<b>房号</b> Unit"), 2, 0)
        form.addWidget(self.unit_edit, 2, 1)
        form.addWidget(self.unit_error, 3, 0, 1, 2)
        buttons = QGridLayout()
        buttons.addWidget(self.new_button, 0, 0)
        buttons.addWidget(self.add_button, 0, 1)
        buttons.addWidget(self.save_button, 1, 0, 1, 2)
        buttons.addWidget(self.revoke_button, 2, 0)
        buttons.addWidget(self.delete_button, 2, 1)
        form.addLayout(buttons, 4, 0, 1, 2)
        form.addWidget(heading("通行证 Pass"), 5, 0, 1, 2)
        form.addWidget(QLabel("<b>有效天数</b> Days"), 6, 0)
        form.addWidget(self.days_edit, 6, 1)
        form.addWidget(self.days_error, 7, 0, 1, 2)
        form.addWidget(self.issue_button, 8, 0, 1, 2)
        out = QHBoxLayout()
        out.addWidget(self.png_button)
        out.addWidget(self.print_button)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 6, 0)
        column.addLayout(form)
        column.addWidget(self.note)
        column.addWidget(self.qr_label)
        column.addLayout(out)
        column.addStretch(1)
        self.area = area = scrolling(right)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        area.setMinimumWidth(340)
        area.setMaximumWidth(440)

        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addWidget(area)
        layout = QVBoxLayout(self)
        layout.addWidget(self.office_note)  # hidden (taking no room) unless the office keeps the residents
        layout.addLayout(columns, 1)
        self._show_card(None)
        self._enable(None)

    @staticmethod
    def _error_label() -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        set_role(label, "error")
        label.hide()
        return label

    # data

    @property
    def registry(self) -> Registry:
        return self.ctx.store.registry

    def on_show(self) -> None:
        if not self.days_edit.text():
            self.days_edit.setText(str(self.ctx.config.community.pass_days))
        self.refresh()
        self.check_office()

    # the office's registry

    def check_office(self) -> None:
        """Read whether the office keeps this kiosk's residents on a worker thread (one read at a time)."""
        home, fleet = self.ctx.home, self.ctx.config.fleet
        self._office_reads.run(lambda: office_versions(home, fleet).get("registry", 0), self._office_read)

    def _office_read(self, version: Optional[int], error: Optional[BaseException]) -> None:
        if error is not None or version is None:  # the page keeps what it showed
            log.warning("residents page: cannot tell whether the office keeps the residents: %s", error)
            return
        self.show_office(version)

    def show_office(self, version: int) -> None:
        """Residents and passes are the office's (``version`` > 0): the note, and nothing here changes them; they
        can still be looked up. 0: this kiosk's own, the page as on a kiosk on its own."""
        self.office_checked = True
        was, self.office_version = self.office_version, version
        locked = bool(version)
        show_office_note(self.office_note, office_note(OFFICE_REGISTRY_NOTE, version) if locked else None)
        if locked == bool(was):
            return
        for edit in (self.name_edit, self.unit_edit, self.days_edit):
            edit.setReadOnly(locked)  # the values stay readable; the on-screen keyboard leaves them alone
        self.revoke_pass_button.setVisible(not locked)  # its room goes to the list of residents, under the note
        resident = self.registry.find(self._shown) if self._shown is not None else None
        if locked:  # drop what was typed: it could not be saved
            self._clear_errors()
            self.name_edit.setText(resident.name if resident is not None else "")
            self.unit_edit.setText(resident.unit if resident is not None else "")
        self._enable(resident)

    def _office_keeps(self) -> bool:
        """True, after saying so, when the office keeps the residents: an action changes nothing here then."""
        if self.office_version:
            self.note.error(OFFICE_REGISTRY_REFUSED)
        return bool(self.office_version)

    def refresh(self, select: Optional[int] = None) -> None:
        current = select if select is not None else self.selected_id()
        residents = [r for r in self.registry.list() if self.show_archived.isChecked() or not r.archived]
        counts = active_pass_counts(self.registry, time.time())
        self.table.blockSignals(True)  # refilling is not the operator picking rows
        try:
            self.table.clearSelection()
            self.table.setRowCount(len(residents))
            for row, r in enumerate(residents):
                state = "已归档 archived" if r.archived else ("有效 active" if r.active else "已停用 revoked")
                cells = [str(r.id), r.name, r.unit, state, str(counts.get(r.id, 0))]
                for col, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setData(Qt.UserRole, r.id)
                    if not r.active:
                        item.setForeground(QColor("#a01818"))
                    self.table.setItem(row, col, item)
                if r.id == current:
                    self.table.selectRow(row)
        finally:
            self.table.blockSignals(False)
        self._filter(self.search.text())
        self._show_resident(self.selected_id())

    def _filter(self, text: str) -> None:
        """Show only the rows whose id, name or unit contain ``text``."""
        words = text.strip().lower()
        for row in range(self.table.rowCount()):
            cells = " ".join(self.table.item(row, col).text().lower() for col in range(3))
            self.table.setRowHidden(row, bool(words) and words not in cells)

    def selected_id(self) -> Optional[int]:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return int(item.data(Qt.UserRole)) if item is not None else None

    def select(self, resident_id: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.UserRole) == resident_id:
                self.table.selectRow(row)
                return

    def _selected(self) -> None:
        """The operator picked another row: keep unsaved name / unit edits unless they agree to drop them."""
        rid = self.selected_id()
        if rid == self._shown:
            return
        if not self.may_drop_edits():
            self._reselect(self._shown)
            return
        self._show_resident(rid)

    def _reselect(self, rid: Optional[int]) -> None:
        self.table.blockSignals(True)
        try:
            self.table.clearSelection()
            if rid is not None:
                self.select(rid)
        finally:
            self.table.blockSignals(False)

    def _show_resident(self, rid: Optional[int]) -> None:
        """Fill the form, the pass list and the buttons for ``rid`` (None: nobody selected)."""
        resident = self.registry.find(rid) if rid is not None else None
        same = resident is not None and resident.id == self._shown and self.unsaved_changes()  # keep what is typed
        self._shown = resident.id if resident is not None else None
        if self.card_resident != self._shown:  # never show one resident's QR beside another's name
            self._show_card(None)
        self.passes.clear()
        if resident is None:
            self._enable(None)
            return
        if not same:
            self.name_edit.setText(resident.name)
            self.unit_edit.setText(resident.unit)
        now = time.time()
        for p in reversed(self.registry.passes_of(resident.id)):
            state = "已注销 revoked" if p.revoked_at else ("已过期 expired" if p.expires_at <= now else "有效 valid")
            item = QListWidgetItem("#{}  {} → {}  {}".format(
                p.serial, time.strftime("%Y-%m-%d", time.localtime(p.issued_at)),
                time.strftime("%Y-%m-%d", time.localtime(p.expires_at)), state))
            item.setData(Qt.UserRole, p.serial)
            item.setData(Qt.UserRole + 1, p.revoked_at is None and p.expires_at > now)
            self.passes.addItem(item)
        self.passes.setCurrentRow(-1)  # a pass is revoked only after the operator picks it
        self._enable(resident)

    def _enable(self, resident: Optional[Resident]) -> None:
        """Actions that need a resident are off until one is selected; what they say follows the resident. Where
        the office keeps the residents, every change is off."""
        chosen = resident is not None
        own = not self.office_version
        self.new_button.setEnabled(own)
        self.add_button.setEnabled(own)
        self.save_button.setEnabled(own and chosen)
        self.revoke_button.setEnabled(own and chosen and not resident.archived)  # type: ignore[union-attr]
        self.issue_button.setEnabled(own and chosen and resident.active)  # type: ignore[union-attr]
        self.delete_button.setEnabled(own and chosen)
        self.revoke_button.setText("恢复 Reinstate" if chosen and not resident.active else "停用 Revoke")  # type: ignore
        if not chosen:
            self.delete_button.setText("删除 Delete")
        elif resident.archived:  # type: ignore[union-attr]
            self.delete_button.setText("取消归档 Unarchive")
        elif self.registry.passes_of(resident.id):  # type: ignore[union-attr]
            self.delete_button.setText("归档 Archive")
        else:
            self.delete_button.setText("删除 Delete")
        self._enable_pass_actions()

    def _enable_pass_actions(self) -> None:
        item = self.passes.currentItem()
        self.revoke_pass_button.setEnabled(not self.office_version and item is not None
                                           and bool(item.data(Qt.UserRole + 1)))

    def unsaved_changes(self) -> bool:
        """Typed name / unit that is neither added nor saved (none where the office keeps the residents)."""
        if self.office_version:
            return False
        name, unit = self.name_edit.text().strip(), self.unit_edit.text().strip()
        resident = self.registry.find(self._shown) if self._shown is not None else None
        if resident is None:
            return bool(name or unit)
        return (" ".join(name.split()), " ".join(unit.split())) != (resident.name, resident.unit)

    def _forget_form(self) -> None:
        self._shown = None
        self.name_edit.clear()
        self.unit_edit.clear()

    def new_resident(self) -> None:
        """Clear the selection and the form for a new resident (asking first if edits would be lost)."""
        if not self.may_drop_edits():
            return
        self._reselect(None)
        self._forget_form()
        self._show_resident(None)
        self.name_edit.setFocus()

    def may_drop_edits(self) -> bool:
        """True when there are no unsaved name / unit edits, or the operator agrees to drop them."""
        if not self.unsaved_changes():
            return True
        resident = self.registry.find(self._shown) if self._shown is not None else None
        subject = resident.name if resident is not None else "新住户 The new resident"
        return confirm(self, "{} 的修改还没有保存，要放弃吗？ Drop the unsaved changes?".format(subject), "放弃修改 Drop")

    # actions

    def _clear_errors(self) -> None:
        for label in (self.name_error, self.unit_error, self.days_error):
            label.clear()
            label.hide()

    def _refuse(self, exc: Exception) -> None:
        """Show a registry error next to the field it is about (the message starts with the field)."""
        text = str(exc)
        label = {"name": self.name_error, "unit": self.unit_error}.get(text.split(" ", 1)[0])
        if label is not None:
            label.setText(explain(text))
            label.show()
        self.note.error("未保存 Not saved: {}".format(explain(text)))

    def _resident(self) -> Optional[Resident]:
        """The selected resident, or None after telling the operator to pick one."""
        rid = self.selected_id()
        resident = self.registry.find(rid) if rid is not None else None
        if resident is None:
            self.note.error("请先在左侧选择住户 Select a resident on the left first")
        return resident

    def add(self) -> Optional[Resident]:
        if self._office_keeps():
            return None
        self._clear_errors()
        name, unit = self.name_edit.text(), self.unit_edit.text()
        same = self.registry.duplicates(name, unit)
        if same and not confirm(
                self, "已有住户 {} 住在 {}（编号 {}）。仍要再新增一位吗？".format(
                    same[0].name, same[0].unit, "、".join(str(r.id) for r in same)),
                "仍然新增 Add anyway", "A resident with this name and unit already exists; adding makes a second one."):
            self.note.busy("未新增：已有同名同房号住户 Not added: already registered")
            if self._shown != same[0].id:
                self.name_edit.clear()
                self.unit_edit.clear()
                self.refresh(select=same[0].id)
            return None
        try:
            # ids above every revoked one, so a wiped database cannot hand out an id that is on the revocation list
            resident = self.registry.add(name, unit, min_id=next_free_ids(self.ctx.home)[0])
        except RegistryError as exc:
            self._refuse(exc)
            return None
        self.ctx.record("resident_added", resident.unit, resident_id=resident.id, resident_name=resident.name)
        self.note.ok("已新增住户 Added {} {} ({})".format(resident.id, resident.name, resident.unit))
        self._shown = resident.id  # the form now holds the added resident: nothing unsaved
        self.refresh(select=resident.id)
        return resident

    def save_edit(self) -> Optional[Resident]:
        if self._office_keeps():
            return None
        self._clear_errors()
        before = self._resident()
        if before is None:
            return None
        try:
            resident = self.registry.update(before.id, self.name_edit.text(), self.unit_edit.text())
        except RegistryError as exc:
            self._refuse(exc)
            return None
        self.ctx.record("resident_edited", "{} {} → {} {}".format(before.name, before.unit, resident.name, resident.unit),
                        resident_id=resident.id, resident_name=resident.name)
        self.note.ok("已保存 Saved {} {} ({})".format(resident.id, resident.name, resident.unit))
        self.refresh(select=resident.id)
        return resident

    def toggle_revoked(self) -> None:
        """Revoke (after a confirmation) or reinstate the selected resident, in the database and on the signed
        revocation list."""
        from kiosk.store.revocations import reinstate_resident, revoke_resident

        if self._office_keeps():
            return
        resident = self._resident()
        if resident is None:
            return
        try:
            if resident.active:
                if not confirm(self, "停用住户 {}（{}）？其所有通行证将无法开门。".format(resident.name, resident.unit),
                               "停用 Revoke", "Revoke {}: none of their passes will open the gate; you can reinstate "
                               "them later.".format(resident.name)):
                    return
                resident, _ = revoke_resident(self.ctx.home, self.registry, str(resident.id))
                self.ctx.record("resident_revoked", resident.unit, resident_id=resident.id, resident_name=resident.name)
                self.note.ok("已停用 {}：其通行证不再开门 Revoked: their passes no longer open the gate".format(resident.name))
            else:
                resident, _ = reinstate_resident(self.ctx.home, self.registry, str(resident.id))
                self.ctx.record("resident_reinstated", resident.unit, resident_id=resident.id, resident_name=resident.name)
                self.note.ok("已恢复 Reinstated {}".format(resident.name))
        except RegistryError as exc:  # e.g. revoked here, but no private key to sign the revocation list
            self.note.error("未完成 Not done: {}".format(explain(str(exc))))
        self.refresh(select=resident.id)

    def revoke_selected_pass(self) -> None:
        """Revoke the pass the operator picked in the list (after a confirmation naming it), in the database and
        for ever on the signed revocation list."""
        from kiosk.store.revocations import revoke_pass

        if self._office_keeps():
            return
        resident = self._resident()
        item = self.passes.currentItem()
        if resident is None or item is None:
            self.note.error("请先在列表中选择要注销的通行证 Pick the pass to revoke in the list first")
            return
        serial = int(item.data(Qt.UserRole))
        if not confirm(self, "注销 {} 的通行证 #{}？注销后不能恢复。".format(resident.name, serial), "注销 Revoke",
                       "Revoke pass #{} of {}: it will never open the gate again.".format(serial, resident.name)):
            return
        try:
            record, _ = revoke_pass(self.ctx.home, self.registry, serial)
        except RegistryError as exc:
            self.note.error("未完成 Not done: {}".format(explain(str(exc))))
            self.refresh()
            return
        self.ctx.record("pass_revoked", "", resident_id=resident.id, resident_name=resident.name, pass_serial=serial)
        if self.card_serial == serial:
            self._show_card(None)
        self.note.ok("已注销 {} 的通行证 #{} Revoked pass #{}".format(resident.name, record.serial, record.serial))
        self.refresh(select=record.resident_id)

    def delete_or_archive(self) -> None:
        """Delete a resident who never had a pass; archive one who had (revoking them first); or unarchive."""
        from kiosk.store.revocations import revoke_resident

        if self._office_keeps():
            return
        resident = self._resident()
        if resident is None:
            return
        try:
            if resident.archived:
                resident = self.registry.unarchive(resident.id)
                self.ctx.record("resident_unarchived", resident.unit, resident_id=resident.id, resident_name=resident.name)
                self.note.ok("已取消归档 Unarchived {}".format(resident.name))
                self.refresh(select=resident.id)
                return
            if not self.registry.passes_of(resident.id):
                if not confirm(self, "删除住户 {}（{}）？此操作不能撤销。".format(resident.name, resident.unit), "删除 Delete",
                               "Delete {}: they have no passes; this cannot be undone.".format(resident.name)):
                    return
                self.registry.delete(resident.id)
                self.ctx.record("resident_deleted", resident.unit, resident_id=resident.id, resident_name=resident.name)
                self.note.ok("已删除住户 Deleted {} ({})".format(resident.name, resident.unit))
                self._forget_form()
                self.refresh()
                return
            if not confirm(self, "归档住户 {}（{}）？{}归档后从列表中隐藏，记录保留。".format(
                    resident.name, resident.unit, "其通行证将被停用；" if resident.active else ""), "归档 Archive",
                    "Archive {}: {}hidden from the list; their records are kept (勾选“显示已归档”可找回).".format(
                        resident.name, "their passes stop working; " if resident.active else "")):
                return
            if resident.active:
                revoke_resident(self.ctx.home, self.registry, str(resident.id))
            resident = self.registry.archive(resident.id)
        except RegistryError as exc:
            self.note.error("未完成 Not done: {}".format(explain(str(exc))))
            self.refresh(select=resident.id)
            return
        self.ctx.record("resident_archived", resident.unit, resident_id=resident.id, resident_name=resident.name)
        self.note.ok("已归档 Archived {}".format(resident.name))
        self._forget_form()
        self.refresh(select=resident.id if self.show_archived.isChecked() else None)

    def issue(self) -> Optional[str]:
        """Issue a pass for the selected resident; the card is shown and can be saved or printed."""
        from kiosk.store.passes import KeyFileError, issue_pass, load_or_create_private_key

        if self._office_keeps():
            return None
        self._clear_errors()
        resident = self._resident()
        if resident is None:
            return None
        if not resident.active:
            self.note.error("{} 已停用，请先恢复 {} is revoked: reinstate them first".format(resident.name, resident.name))
            return None
        try:
            days = parse_days(self.days_edit.text())
        except ValueError as exc:
            self.days_error.setText(explain(str(exc)))
            self.days_error.show()
            self.note.error("未签发 Not issued: {}".format(explain(str(exc))))
            return None
        home = self.ctx.home
        if home.public_key.exists() and not home.private_key.exists():
            # the community's key is elsewhere (the property office): making one here would replace the community's
            # public key, and no pass of the community would open this gate any more
            self.note.error("未签发：本机没有小区私钥，请在物业办公室签发通行证 Not issued: this kiosk holds only the "
                            "community's public key ({}); issue passes where the private key is".format(home.public_key))
            return None
        try:
            key = load_or_create_private_key(home.private_key, home.public_key)
            serial, token = issue_pass(self.registry, key, resident.id, days, time.time(), min_serial=next_free_ids(home)[1])
        except (RegistryError, KeyFileError, OSError) as exc:
            self.note.error("未签发 Not issued: {}".format(explain(str(exc))))
            return None
        record = self.registry.get_pass(serial)
        expires = record.expires_at if record is not None else time.time() + days * 86400
        self.ctx.record("pass_issued", "valid until {}".format(time.strftime("%Y-%m-%d", time.localtime(expires))),
                        resident_id=resident.id, resident_name=resident.name, pass_serial=serial)
        self.token = token
        self.card_name = "pass-{}-{}.png".format(serial, "".join(c if c.isalnum() else "-" for c in resident.unit))
        self.refresh(select=resident.id)
        self._show_card(render_pass_card(token, self.ctx.config.community.name, resident, serial, expires), resident.id, serial)
        self.note.ok("已签发通行证 #{}：{}，有效期至 {} Issued pass #{} for {}".format(
            serial, resident.name, time.strftime("%Y-%m-%d", time.localtime(expires)), serial, resident.name))
        return token

    def _show_card(self, card: Optional[QImage], resident_id: Optional[int] = None, serial: Optional[int] = None) -> None:
        self.card = card
        self.card_resident = resident_id if card is not None else None
        self.card_serial = serial if card is not None else None
        self.png_button.setEnabled(card is not None)
        self.print_button.setEnabled(card is not None and QPrinter is not None)
        if card is None:
            self.token = None
            self.qr_label.clear()
            self.qr_label.hide()
        else:
            self.qr_label.setPixmap(QPixmap.fromImage(card).scaledToWidth(220, Qt.SmoothTransformation))
            self.qr_label.show()
            # Save and Print sit under the card: bring them into view on the small panel
            self.area.widget().adjustSize()
            self.area.ensureWidgetVisible(self.print_button)

    def save_png(self, path: str) -> bool:
        if self.card is None:
            return False
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.note.error("无法保存到 {}：{} Cannot write there".format(Path(path).parent, exc.strerror or exc))
            return False
        if not self.card.save(path, "PNG"):
            self.note.error("无法保存 {}：请检查 U 盘是否已满或写保护 Cannot write the file".format(path))
            return False
        self.ctx.record("pass_saved", path, resident_id=self.card_resident, pass_serial=self.card_serial)
        self.note.ok("已保存 Saved {}".format(path))
        return True

    def _ask_png(self) -> None:
        path = choose_export_path(self, self.ctx, "保存通行证 Save pass", self.card_name)
        if path is not None:
            self.save_png(str(path))

    def print_card(self) -> None:
        if self.card is None or QPrinter is None:
            return
        printer = QPrinter(QPrinter.HighResolution)
        dialog = QPrintDialog(printer, self)
        accepted = dialog.exec_() == QPrintDialog.Accepted
        give_focus_back(self)
        if not accepted:
            return
        self.paint_card(printer)
        self.ctx.record("pass_printed", "", resident_id=self.card_resident, pass_serial=self.card_serial)
        self.note.ok("已发送到打印机 Sent to the printer")

    def paint_card(self, printer: Any) -> None:
        """The card about 7.5 cm wide at the top of the page."""
        painter = QPainter(printer)
        page = painter.viewport()
        width = min(page.width(), int(printer.resolution() * 3.0))
        scaled = self.card.scaledToWidth(width, Qt.SmoothTransformation)  # type: ignore[union-attr]
        painter.drawImage((page.width() - scaled.width()) // 2, 0, scaled)
        painter.end()
