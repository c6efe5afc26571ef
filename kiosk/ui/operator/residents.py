"""Residents page: add, edit, revoke and reinstate residents; issue a pass and save or print its QR code.

The registry (:mod:`kiosk.store.registry`) and :func:`kiosk.store.passes.issue_pass` do the work, as they
do for ``dabai-kiosk residents`` and ``dabai-kiosk pass issue``; this page only shows and asks.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Dict, Optional

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QColor, QFont, QImage, QPainter, QPixmap
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
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
from kiosk.store.registry import Registry, RegistryError, Resident
from kiosk.store.revocations import next_free_ids
from kiosk.ui.operator.widgets import Note, Page, cjk_font, explain, export_folder, heading, hint, scrolling, set_role

try:  # QtPrintSupport is part of PyQt5's wheels, but some distribution builds split it out
    from PyQt5.QtPrintSupport import QPrintDialog, QPrinter
except ImportError:  # pragma: no cover - depends on the PyQt5 build
    QPrintDialog = QPrinter = None

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
    font = cjk_font()
    font.setPixelSize(24)
    font.setWeight(QFont.Bold)
    painter.setFont(font)
    painter.drawText(0, h, w, 36, Qt.AlignHCenter | Qt.AlignVCenter, community)
    font.setPixelSize(20)
    font.setWeight(QFont.Normal)
    painter.setFont(font)
    painter.drawText(0, h + 38, w, 30, Qt.AlignHCenter | Qt.AlignVCenter, "{}  {}".format(resident.name, resident.unit))
    expiry = time.strftime("%Y-%m-%d", time.localtime(expires_at))
    painter.drawText(0, h + 72, w, 30, Qt.AlignHCenter | Qt.AlignVCenter, "通行证 #{}  有效期至 {}".format(serial, expiry))
    painter.end()
    return card


class ResidentsPage(Page):
    name = "residents"
    title = "住户 Residents"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.card: Optional[QImage] = None
        self.token: Optional[str] = None
        self.card_name = "pass.png"

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
        self.revoke_pass_button = QPushButton("注销所选通行证 Revoke pass")
        self.revoke_pass_button.setProperty("danger", True)
        self.revoke_pass_button.clicked.connect(self.revoke_selected_pass)

        self.search = QLineEdit()
        self.search.setPlaceholderText("搜索姓名、房号或编号 Search name, unit or id")
        self.search.textChanged.connect(self._filter)
        left = QVBoxLayout()
        left.addWidget(self.search)
        left.addWidget(self.table, 1)
        left.addWidget(hint("所选住户的通行证 Passes of the selected resident"))
        left.addWidget(self.passes)
        left.addWidget(self.revoke_pass_button)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("张三")
        self.unit_edit = QLineEdit()
        self.unit_edit.setPlaceholderText("3-201")
        self.name_error = self._error_label()
        self.unit_error = self._error_label()
        self.add_button = QPushButton("新增 Add")
        self.add_button.setProperty("accent", True)
        self.add_button.clicked.connect(self.add)
        self.save_button = QPushButton("保存修改 Save")
        self.save_button.clicked.connect(self.save_edit)
        self.revoke_button = QPushButton("停用 Revoke")
        self.revoke_button.setProperty("danger", True)
        self.revoke_button.clicked.connect(self.toggle_revoked)
        self.days_edit = QLineEdit()
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
        buttons.addWidget(self.add_button, 0, 0)
        buttons.addWidget(self.save_button, 0, 1)
        buttons.addWidget(self.revoke_button, 1, 0, 1, 2)
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
        area = scrolling(right)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        area.setMinimumWidth(340)
        area.setMaximumWidth(440)

        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(area)
        self._show_card(None)

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

    def refresh(self, select: Optional[int] = None) -> None:
        current = select if select is not None else self.selected_id()
        residents = self.registry.list()
        counts = active_pass_counts(self.registry, time.time())
        self.table.setRowCount(len(residents))
        for row, r in enumerate(residents):
            cells = [str(r.id), r.name, r.unit, "有效 active" if r.active else "已停用 revoked", str(counts.get(r.id, 0))]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, r.id)
                if not r.active:
                    item.setForeground(QColor("#a01818"))
                self.table.setItem(row, col, item)
            if r.id == current:
                self.table.selectRow(row)
        self._filter(self.search.text())
        self._selected()

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
        rid = self.selected_id()
        resident = self.registry.find(rid) if rid is not None else None
        for button in (self.save_button, self.revoke_button, self.issue_button):
            button.setEnabled(resident is not None)
        self.passes.clear()
        if resident is None:
            self.revoke_button.setText("停用 Revoke")
            self.revoke_pass_button.setEnabled(False)
            return
        self.name_edit.setText(resident.name)
        self.unit_edit.setText(resident.unit)
        self.revoke_button.setText("停用 Revoke" if resident.active else "恢复 Reinstate")
        now = time.time()
        for p in reversed(self.registry.passes_of(resident.id)):
            state = "已注销 revoked" if p.revoked_at else ("已过期 expired" if p.expires_at <= now else "有效 valid")
            item = QListWidgetItem("#{}  {} → {}  {}".format(
                p.serial, time.strftime("%Y-%m-%d", time.localtime(p.issued_at)),
                time.strftime("%Y-%m-%d", time.localtime(p.expires_at)), state))
            item.setData(Qt.UserRole, p.serial)
            self.passes.addItem(item)
        self.revoke_pass_button.setEnabled(self.passes.count() > 0)

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

    def add(self) -> Optional[Resident]:
        self._clear_errors()
        try:
            # ids above every revoked one, so a wiped database cannot hand out an id that is on the revocation list
            resident = self.registry.add(self.name_edit.text(), self.unit_edit.text(),
                                         min_id=next_free_ids(self.ctx.home)[0])
        except RegistryError as exc:
            self._refuse(exc)
            return None
        self.note.ok("已新增住户 Added {} {} ({})".format(resident.id, resident.name, resident.unit))
        self.refresh(select=resident.id)
        return resident

    def save_edit(self) -> Optional[Resident]:
        self._clear_errors()
        rid = self.selected_id()
        if rid is None:
            self.note.error("请先选择住户 Select a resident first")
            return None
        try:
            resident = self.registry.update(rid, self.name_edit.text(), self.unit_edit.text())
        except RegistryError as exc:
            self._refuse(exc)
            return None
        self.note.ok("已保存 Saved {} {} ({})".format(resident.id, resident.name, resident.unit))
        self.refresh(select=resident.id)
        return resident

    def toggle_revoked(self) -> None:
        """Revoke or reinstate the selected resident, in the database and on the signed revocation list."""
        from kiosk.store.revocations import reinstate_resident, revoke_resident

        rid = self.selected_id()
        if rid is None:
            return
        try:
            if self.registry.get(rid).active:
                resident, _ = revoke_resident(self.ctx.home, self.registry, str(rid))
                self.note.ok("已停用 {}：其通行证不再开门 Revoked: their passes no longer open the gate".format(resident.name))
            else:
                resident, _ = reinstate_resident(self.ctx.home, self.registry, str(rid))
                self.note.ok("已恢复 Reinstated {}".format(resident.name))
        except RegistryError as exc:  # e.g. revoked here, but no private key to sign the revocation list
            self.note.error("未完成 Not done: {}".format(exc))
        self.refresh(select=rid)

    def revoke_selected_pass(self) -> None:
        """Revoke the selected pass, in the database and for ever on the signed revocation list."""
        from kiosk.store.revocations import revoke_pass

        item = self.passes.currentItem() or (self.passes.item(0) if self.passes.count() else None)
        if item is None:
            return
        try:
            record, _ = revoke_pass(self.ctx.home, self.registry, int(item.data(Qt.UserRole)))
        except RegistryError as exc:
            self.note.error("未完成 Not done: {}".format(exc))
            self.refresh()
            return
        self.note.ok("已注销通行证 Revoked pass #{}".format(record.serial))
        self.refresh(select=record.resident_id)

    def issue(self) -> Optional[str]:
        """Issue a pass for the selected resident; the card is shown and can be saved or printed."""
        from kiosk.store.passes import KeyFileError, issue_pass, load_or_create_private_key

        self._clear_errors()
        rid = self.selected_id()
        if rid is None:
            self.note.error("请先选择住户 Select a resident first")
            return None
        try:
            days = parse_days(self.days_edit.text())
        except ValueError as exc:
            self.days_error.setText(explain(str(exc)))
            self.days_error.show()
            self.note.error("未签发 Not issued: {}".format(explain(str(exc))))
            return None
        home = self.ctx.home
        try:
            key = load_or_create_private_key(home.private_key, home.public_key)
            serial, token = issue_pass(self.registry, key, rid, days, time.time(), min_serial=next_free_ids(home)[1])
        except (RegistryError, KeyFileError, OSError) as exc:
            self.note.error("未签发 Not issued: {}".format(exc))
            return None
        record = self.registry.get_pass(serial)
        resident = self.registry.get(rid)
        expires = record.expires_at if record is not None else time.time() + days * 86400
        self.token = token
        self.card_name = "pass-{}-{}.png".format(serial, "".join(c if c.isalnum() else "-" for c in resident.unit))
        self._show_card(render_pass_card(token, self.ctx.config.community.name, resident, serial, expires))
        self.note.ok("已签发通行证 #{} Issued pass #{} for {}, valid until {}".format(
            serial, serial, resident.name, time.strftime("%Y-%m-%d", time.localtime(expires))))
        self.refresh(select=rid)
        return token

    def _show_card(self, card: Optional[QImage]) -> None:
        self.card = card
        self.png_button.setEnabled(card is not None)
        self.print_button.setEnabled(card is not None and QPrinter is not None)
        if card is None:
            self.qr_label.clear()
            self.qr_label.hide()
        else:
            self.qr_label.setPixmap(QPixmap.fromImage(card).scaledToWidth(260, Qt.SmoothTransformation))
            self.qr_label.show()

    def save_png(self, path: str) -> bool:
        if self.card is None:
            return False
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not self.card.save(path, "PNG"):
            self.note.error("无法保存 Cannot write {}".format(path))
            return False
        self.note.ok("已保存 Saved {}".format(path))
        return True

    def _ask_png(self) -> None:
        default = str(export_folder(self.ctx.home.root) / self.card_name)
        path, _ = QFileDialog.getSaveFileName(self, "保存通行证 Save pass", default, "PNG (*.png)")
        if path:
            self.save_png(path)

    def print_card(self) -> None:
        if self.card is None or QPrinter is None:
            return
        printer = QPrinter(QPrinter.HighResolution)
        dialog = QPrintDialog(printer, self)
        if dialog.exec_() != QPrintDialog.Accepted:
            return
        painter = QPainter(printer)
        page = painter.viewport()
        width = min(page.width(), int(printer.resolution() * 3.0))  # about 7.5 cm wide
        scaled = self.card.scaledToWidth(width, Qt.SmoothTransformation)
        painter.drawImage((page.width() - scaled.width()) // 2, 0, scaled)
        painter.end()
        self.note.ok("已发送到打印机 Sent to the printer")

