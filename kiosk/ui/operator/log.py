"""Access-log page: the latest decisions with filters (dates, result, reason, resident) and CSV export.

Rows come from :meth:`AccessLog.list` and the export is :meth:`AccessLog.export_csv`, as for
``dabai-kiosk log list`` and ``log export``; queries run on a worker thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional

from PyQt5.QtCore import QDate, Qt
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QGridLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kiosk.config import atomic_write
from kiosk.store.passes import REASONS
from kiosk.ui.operator.widgets import Note, Page, choose_export_path, run_in_background

log = logging.getLogger(__name__)

MAX_ROWS = 1000  # shown at once; the export has everything
OUTCOMES = (("", "全部 All"), ("granted", "通过 granted"), ("denied", "拒绝 denied"), ("abandoned", "放弃 abandoned"),
            ("operator", "运维操作 operator"), ("alarm", "告警 alarm"))
OUTCOME_ZH = {value: text.split(" ")[0] for value, text in OUTCOMES if value}
OUTCOME_COLOURS = {"granted": "#1a7f37", "operator": "#1f4fa8", "alarm": "#b35900"}  # others: red
# An operator's action (Context.record: reason "action" or "action: detail") in words.
ACTION_ZH = {
    "remote_open": "远程开门", "remote_open_failed": "远程开门失败", "gate_test": "测试开闸", "gate_test_failed": "测试开闸失败",
    "pin_changed": "修改运维密码", "restart_app": "重启程序", "restart_app_failed": "重启程序失败",
    "reboot": "重启设备", "reboot_failed": "重启设备失败", "power_off": "关机", "power_off_failed": "关机失败",
    "resident_added": "添加住户", "resident_edited": "修改住户", "resident_revoked": "停用住户",
    "resident_reinstated": "恢复住户", "resident_archived": "归档住户", "resident_unarchived": "取消归档",
    "resident_deleted": "删除住户", "pass_issued": "签发通行证", "pass_revoked": "注销通行证", "pass_saved": "保存通行证",
    "pass_printed": "打印通行证", "settings_saved": "保存设置", "log_exported": "导出记录",
}
REASON_ZH = {
    "ok": "通过", "no_mask": "未戴口罩", "mask_incorrect": "口罩未戴好", "timeout": "超时", "left": "离开",
    "malformed": "二维码无效",
    "bad_signature": "二维码伪造", "wrong_community": "非本小区", "expired": "已过期", "not_yet_valid": "尚未生效",
    "pass_revoked": "通行证已注销", "unknown_resident": "未登记住户", "resident_revoked": "住户已停用",
    "unknown_pass": "通行证未登记", "revocations_unsure": "注销名单异常",
}


def reason_text(outcome: str, reason: str) -> str:
    """The reason column: ``通过 ok``; an operator's action as ``远程开门：快递 remote_open``."""
    if outcome != "operator":
        return "{} {}".format(REASON_ZH.get(reason, ""), reason).strip()
    action, _, detail = reason.partition(": ")
    zh = ACTION_ZH.get(action)
    if zh is None:
        return reason
    return "{}{} {}".format(zh, "：" + detail if detail else "", action)


COLUMNS = ("时间 Time", "结果 Result", "原因 Reason", "住户 Resident", "口罩 Mask", "通行证 Pass", "闸机 Gate")


@dataclass(frozen=True)
class LogFilter:
    since: Optional[float] = None  # unix seconds, inclusive
    until: Optional[float] = None  # unix seconds, exclusive
    outcome: str = ""
    reason: str = ""
    resident: str = ""  # id, or part of a name


def day_start(day: date) -> float:
    return time.mktime(datetime(day.year, day.month, day.day).timetuple())


def query_log(access_log: Any, flt: LogFilter, limit: int = MAX_ROWS) -> List[Dict[str, Any]]:
    """Rows of the access log matching ``flt``, newest first."""
    return access_log.list(limit=limit, **filter_args(flt))  # type: ignore[no-any-return]


def filter_args(flt: LogFilter) -> Dict[str, Any]:
    """``flt`` as the keyword arguments of :meth:`AccessLog.list` and :meth:`AccessLog.export_csv`."""
    return {"outcome": flt.outcome or None, "since": flt.since, "until": flt.until, "reason": flt.reason or None,
            "resident": flt.resident or None}


class LogPage(Page):
    name = "log"
    title = "记录 Access log"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.rows: List[Dict[str, Any]] = []
        today = QDate.currentDate()
        self.since = QDateEdit(today.addDays(-7))
        self.until = QDateEdit(today)
        for edit in (self.since, self.until):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setMinimumWidth(150)
        self.outcome = QComboBox()
        for value, text in OUTCOMES:
            self.outcome.addItem(text, value)
        self.reason = QComboBox()
        self.reason.addItem("全部 All", "")
        for key in list(REASON_ZH) + [r for r in REASONS if r not in REASON_ZH]:
            self.reason.addItem("{} {}".format(REASON_ZH.get(key, ""), key).strip(), key)
        self.resident = QLineEdit()
        self.resident.setPlaceholderText("姓名或编号 name or id")
        self.resident.returnPressed.connect(self.refresh)
        self.filter_button = QPushButton("查询 Filter")
        self.filter_button.setProperty("accent", True)
        self.filter_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("导出 Export")
        self.export_button.clicked.connect(self._ask_export)
        self.export_button.setToolTip("按当前筛选导出全部记录（格式同 dabai-kiosk log export）\n"
                                      "Every record the filters select, in the format of `dabai-kiosk log export`")
        self.note = Note()

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)

        filters = QGridLayout()
        filters.addWidget(QLabel("从 From"), 0, 0)
        filters.addWidget(self.since, 0, 1)
        filters.addWidget(QLabel("到 To"), 0, 2)
        filters.addWidget(self.until, 0, 3)
        filters.addWidget(QLabel("结果 Result"), 1, 0)
        filters.addWidget(self.outcome, 1, 1)
        filters.addWidget(QLabel("原因 Reason"), 1, 2)
        filters.addWidget(self.reason, 1, 3)
        filters.addWidget(QLabel("住户 Resident"), 2, 0)
        filters.addWidget(self.resident, 2, 1, 1, 3)
        filters.addWidget(self.filter_button, 0, 4)
        filters.addWidget(self.export_button, 1, 4)
        filters.setColumnStretch(1, 1)
        filters.setColumnStretch(3, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)

    def on_show(self) -> None:
        self.refresh()

    def current_filter(self) -> LogFilter:
        """The filter on screen; ValueError when the dates are the wrong way round."""
        since, until = self.since.date().toPyDate(), self.until.date().toPyDate()
        if since > until:
            raise ValueError("the start date {} is after the end date {}".format(since, until))
        return LogFilter(day_start(since), day_start(until + timedelta(days=1)), self.outcome.currentData() or "",
                         self.reason.currentData() or "", self.resident.text().strip())

    def refresh(self) -> None:
        try:
            flt = self.current_filter()
        except ValueError as exc:
            self.note.error("起始日期晚于结束日期 · {}".format(exc))
            return
        self.note.busy("查询中 Loading…")
        self.filter_button.setEnabled(False)
        access_log = self.ctx.store.access_log
        run_in_background(lambda: query_log(access_log, flt), self._loaded)

    def _loaded(self, rows: Optional[List[Dict[str, Any]]], error: Optional[BaseException]) -> None:
        self.filter_button.setEnabled(True)
        if error is not None:
            self.note.error("无法读取记录 Cannot read the log: {}".format(error))
            return
        self.rows = rows or []
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            cells = [
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"])),
                "{} {}".format(OUTCOME_ZH.get(r["outcome"], ""), r["outcome"]).strip(),
                reason_text(r["outcome"], r["reason"]),
                r["resident_name"] or ("#{}".format(r["resident_id"]) if r["resident_id"] else "—"),
                r["mask"] or "—",
                "#{} {}".format(r["pass_serial"], r["pass_reason"] or "") if r["pass_serial"] else (r["pass_reason"] or "—"),
                "开 open" if r["gate_opened"] else "关 closed",
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 1:
                    item.setForeground(QColor(OUTCOME_COLOURS.get(r["outcome"], "#a01818")))
                item.setTextAlignment(Qt.AlignVCenter | Qt.AlignLeft)
                self.table.setItem(i, col, item)
        pending = self.ctx.store.access_log.pending
        self.note.ok("{} 条记录 record(s){}{}".format(
            len(self.rows), "（仅显示前 {} 条 first {} shown）".format(MAX_ROWS, MAX_ROWS) if len(self.rows) >= MAX_ROWS else "",
            "；{} 条待写入数据库 waiting for the database".format(pending) if pending else ""))

    # export

    def export_csv(self, path: str) -> None:
        """Write the records the filters select as CSV (the format of ``dabai-kiosk log export``)."""
        try:
            args = filter_args(self.current_filter())
        except ValueError as exc:
            self.note.error("起始日期晚于结束日期 · {}".format(exc))
            return
        access_log = self.ctx.store.access_log
        self.note.busy("导出中 Exporting…")

        def work() -> str:
            atomic_write(Path(path), access_log.export_csv(**args).encode("utf-8"))
            return path

        run_in_background(work, self._exported)

    def _exported(self, path: Optional[str], error: Optional[BaseException]) -> None:
        if error is not None:
            log.warning("operator: log export failed: %s", error)
            self.note.error("导出失败：请检查 U 盘是否已满或写保护 Export failed: is the USB stick full or locked?")
        else:
            self.ctx.record("log_exported", str(path))
            self.note.ok("已导出 Exported to {}".format(path))

    def _ask_export(self) -> None:
        """Only to a USB stick or the export folder, through the Chinese save dialog (never a file browser)."""
        name = "access-log-{}.csv".format(time.strftime("%Y%m%d-%H%M%S"))
        path = choose_export_path(self, self.ctx, "导出记录 Export the log", name)
        if path is not None:
            self.export_csv(str(path))
