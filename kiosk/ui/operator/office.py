"""各门岗 page (issue 14): on the property office's machine, every gate of the community as the office sees it.

Shown only where the data home holds the office's database (:func:`kiosk.fleet.office.office_database`): one card
per kiosk with its last contact (marked 失联 when silent for longer than ``[fleet] out_of_touch_s``), the versions of
the lists it holds, how many of its records the office holds, the messages it refused and its latest decisions. It
reads :func:`kiosk.fleet.office.overview` on a worker thread every few seconds while shown, one read at a time.

Also here, for the screen's banner: :func:`fleet_warning` (why this kiosk is out of touch with its office, or None)
and :func:`out_of_touch_text` (that reason in Chinese, the English detail second).
"""

from __future__ import annotations

import logging
import re
import time
from html import escape
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

# Imported here, on the GUI thread when the screen is made: the worker threads only read files with them.
from kiosk.config import FleetConfig, Home
from kiosk.fleet.link import out_of_touch
from kiosk.fleet.office import office_database, overview
from kiosk.ui.operator import OFFICE_PAGE
from kiosk.ui.operator.log import OUTCOME_COLOURS, OUTCOME_ZH, reason_text
from kiosk.ui.operator.widgets import Note, OneAtATime, Page, heading, hint, scrolling, set_role

log = logging.getLogger(__name__)

REFRESH_MS = 3000
RECENT = 5  # decisions shown per kiosk
LISTS = (("revocations", "吊销名单"), ("registry", "住户"), ("policy", "规则"), ("key", "密钥"))
LIST_ZH = dict(LISTS, **{"registry-change": "住户变更"})
ONLINE_COLOUR = "#1a7f37"  # white text on it: 5.1:1
LOST_COLOUR = "#c01c1c"  # white text on it: 5.9:1
BEHIND_COLOUR = "#9a4d00"  # an older list than another gate's: 6.3:1 on white
STYLE = """
QFrame#kiosk_card { background: #ffffff; border: 1px solid #c3ccd6; border-radius: 8px; }
QFrame#kiosk_card[lost="true"] { background: #fff6f6; border: 2px solid #c01c1c; }
QLabel#kiosk_name { font-size: 21px; font-weight: bold; }
QLabel#kiosk_state { font-size: 17px; font-weight: bold; color: white; border-radius: 6px; padding: 3px 12px;
                     background: #1a7f37; }
QLabel#kiosk_state[lost="true"] { background: #c01c1c; }
QLabel#kiosk_contact { font-size: 17px; }
QLabel#kiosk_contact[lost="true"] { color: #a01818; font-weight: bold; }
"""


# ---- words -----------------------------------------------------------------------------------


def span_zh(seconds: float) -> str:
    """A length of time in Chinese: ``45 秒``, ``12 分钟``, ``3 小时``, ``2 天``."""
    s = max(0.0, float(seconds))
    if s < 60:
        return "{:.0f} 秒".format(s)
    if s < 3600:
        return "{:g} 分钟".format(round(s / 60, 1) if s < 600 else round(s / 60))
    if s < 86400:
        return "{:g} 小时".format(round(s / 3600, 1) if s < 36000 else round(s / 3600))
    return "{:g} 天".format(round(s / 86400, 1) if s < 864000 else round(s / 86400))


def ago_zh(seconds: Optional[float]) -> str:
    """How long ago, in Chinese: ``12 秒前``, ``5 分钟前``; ``从未联系`` for never."""
    if seconds is None:
        return "从未联系"
    s = max(0.0, float(seconds))
    if s < 60:
        return "{:.0f} 秒前".format(s)
    if s < 3600:
        return "{:.0f} 分钟前".format(s // 60)
    if s < 86400:
        return "{:.0f} 小时前".format(s // 3600)
    return "{:.0f} 天前".format(s // 86400)


def clock_text(ts: float, now: Optional[float] = None) -> str:
    """``14:03:22`` today, ``05-17 14:03`` another day."""
    now = time.time() if now is None else now
    if time.strftime("%Y-%m-%d", time.localtime(ts)) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", time.localtime(ts))
    return time.strftime("%m-%d %H:%M", time.localtime(ts))


def is_lost(entry: Dict[str, Any], limit_s: float) -> bool:
    """Whether the office has not heard from this kiosk for longer than ``limit_s`` (or ever)."""
    silent = entry.get("silent_s")
    return silent is None or silent > limit_s


def version_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return "未知"
    if value < 0:
        return "读取异常"
    if value == 0:
        return "无"
    return "第 {} 版".format(value)


def newest_versions(kiosks: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """The highest version of each list any kiosk holds."""
    newest: Dict[str, int] = {}
    for entry in kiosks:
        for key, _ in LISTS:
            value = (entry.get("versions") or {}).get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > newest.get(key, 0):
                newest[key] = value
    return newest


def versions_html(versions: Dict[str, Any], newest: Dict[str, int]) -> str:
    """``吊销名单 第 3 版 · 住户 第 12 版 …``, a list older than another gate's in orange with （较旧）."""
    parts = []
    for key, zh in LISTS:
        value = versions.get(key)
        text = version_text(value)
        behind = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < newest.get(key, 0)
        if behind:
            parts.append("{} <b style='color:{}'>{}（较旧）</b>".format(zh, BEHIND_COLOUR, text))
        else:
            parts.append("{} <b>{}</b>".format(zh, text))
    return "　·　".join(parts)


def refused_text(entry: Dict[str, Any], now: Optional[float] = None) -> str:
    """``拒收 2 条消息 · 最近 14:02:11 吊销名单：<why>``; empty when it refused nothing."""
    count = entry.get("refused") or 0
    if not isinstance(count, int) or count <= 0:
        return ""
    text = "拒收 {} 条办公室消息".format(count)
    last = entry.get("last_refused") or []
    if last and isinstance(last[-1], (list, tuple)) and len(last[-1]) >= 3:
        name, why, when = last[-1][:3]
        stamp = clock_text(when, now) if isinstance(when, (int, float)) else ""
        why = str(why)
        text += " · 最近一次 {} {}：{}".format(stamp, LIST_ZH.get(str(name), str(name)),
                                          why if len(why) <= 90 else why[:89] + "…")
    return text


_SPAN_UNITS = (("days", "天"), ("min", "分钟"), ("h", "小时"), ("s", "秒"))


def _span_en_to_zh(text: str) -> str:
    for en, zh in _SPAN_UNITS:
        if text.endswith(" " + en):
            return text[: -len(en)] + zh
    return text


def out_of_touch_text(reason: str) -> str:
    """:func:`kiosk.fleet.link.out_of_touch`'s reason for the operator: Chinese first, the English detail second."""
    m = re.match(r"no contact with the office's broker for (.+?) \(since (.+)\)$", reason)
    if m:
        zh = "已有 {}未联系上物业办公室（最后联系于 {}）".format(_span_en_to_zh(m.group(1)), m.group(2))
    elif reason.startswith("never reached"):
        zh = "从未联系上物业办公室：请检查网络、办公室的服务器和本机的入网文件"
    else:
        zh = "未联系上物业办公室"
    return ("与物业办公室失联：{}。本机照常按已有的名单判断通行，名单可能不是最新的；通行记录会在恢复联系后补传。\n"
            "Out of touch with the office: {}".format(zh, reason))


def fleet_warning(home: Home, config: FleetConfig, now: Optional[float] = None) -> Optional[str]:
    """Why this kiosk is out of touch with its office (:func:`kiosk.fleet.link.out_of_touch`), or None: in touch,
    on its own, or the office's own machine."""
    return out_of_touch(home, config, now)


def read_office(path: Path, now: Optional[float] = None) -> Tuple[List[Dict[str, Any]], float]:
    """(:func:`overview` of the office's database, when it was read); on a worker thread."""
    now = time.time() if now is None else now
    return overview(path, recent=RECENT, now=now), now


# ---- the page ----------------------------------------------------------------------------------


def _repolish(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


class KioskCard(QFrame):
    """One kiosk: name, 在线 / 失联, last contact, list versions, records, refusals and its latest decisions."""

    def __init__(self, name: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("kiosk_card")
        self.kiosk = name
        self.name = QLabel(name)
        self.name.setObjectName("kiosk_name")
        self.state = QLabel()
        self.state.setObjectName("kiosk_state")
        self.contact = QLabel()
        self.contact.setObjectName("kiosk_contact")
        self.contact.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.versions = QLabel()
        self.versions.setWordWrap(True)
        self.records = QLabel()
        self.records.setWordWrap(True)
        self.refused = QLabel()
        self.refused.setWordWrap(True)
        set_role(self.refused, "error")
        self.refused.setStyleSheet("font-size: 15px;")
        self.no_recent = hint("暂无通行记录 No decisions yet")
        self.rows: List[Tuple[QLabel, QLabel, QLabel, QLabel]] = []
        recent = QGridLayout()
        recent.setContentsMargins(0, 0, 0, 0)
        recent.setHorizontalSpacing(18)
        recent.setVerticalSpacing(4)
        recent.setColumnStretch(3, 1)  # the name beside the reason, the room after it
        for i in range(RECENT):
            row = (QLabel(), QLabel(), QLabel(), QLabel())
            for col, label in enumerate(row):
                label.setTextInteractionFlags(Qt.NoTextInteraction)
                recent.addWidget(label, i, col)
            set_role(row[0], "hint")
            row[0].setStyleSheet("font-size: 15px;")
            self.rows.append(row)

        top = QHBoxLayout()
        top.setSpacing(12)
        top.addWidget(self.name)
        top.addWidget(self.state)
        top.addStretch(1)
        top.addWidget(self.contact)
        column = QVBoxLayout(self)
        column.setContentsMargins(14, 10, 14, 12)
        column.setSpacing(6)
        column.addLayout(top)
        column.addWidget(self.versions)
        column.addWidget(self.records)
        column.addWidget(self.refused)
        column.addWidget(heading("最近通行 Latest decisions"))
        column.addWidget(self.no_recent)
        column.addLayout(recent)

    def show_entry(self, entry: Dict[str, Any], limit_s: float, newest: Dict[str, int], now: float) -> None:
        lost = is_lost(entry, limit_s)
        for widget in (self, self.state, self.contact):
            if widget.property("lost") != lost:
                widget.setProperty("lost", lost)
                _repolish(widget)
        self.state.setText("失联 Out of touch" if lost else "在线 In touch")
        last = entry.get("last_contact")
        contact = "最后联系：{}".format(ago_zh(entry.get("silent_s")))
        if isinstance(last, (int, float)) and last > 0:
            contact += "（{}）".format(clock_text(last, now))
        self.contact.setText(contact)
        self.versions.setText("名单版本：" + versions_html(entry.get("versions") or {}, newest))
        records, upto = entry.get("records") or 0, entry.get("records_upto") or 0
        self.records.setText("办公室已收到记录 <b>{}</b> 条{}".format(
            records, "（连续到第 {} 条）".format(upto) if upto else ""))
        refused = refused_text(entry, now)
        self.refused.setText(refused)
        self.refused.setVisible(bool(refused))
        recent = list(entry.get("recent") or [])[:RECENT]
        self.no_recent.setVisible(not recent)
        for i, row in enumerate(self.rows):
            if i >= len(recent):
                for label in row:
                    label.hide()
                continue
            r = recent[i]
            outcome = str(r.get("outcome") or "")
            cells = (clock_text(r["ts"], now) if isinstance(r.get("ts"), (int, float)) else "—",
                     "<b style='color:{}'>{}</b>".format(OUTCOME_COLOURS.get(outcome, "#a01818"), escape(
                         "{} {}".format(OUTCOME_ZH.get(outcome, ""), outcome).strip())),
                     escape(reason_text(outcome, str(r.get("reason") or ""))),
                     escape(str(r.get("resident_name") or "—")))
            for label, text in zip(row, cells):
                label.setText(text)
                label.show()


class OfficePage(Page):
    name = OFFICE_PAGE
    title = "各门岗 Gates"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.setStyleSheet(STYLE)
        self.path = office_database(ctx.home)
        self.kiosks: List[Dict[str, Any]] = []
        self.cards: Dict[str, KioskCard] = {}
        self._reads = OneAtATime()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.note = Note()
        self.summary = QLabel()
        self.summary.setObjectName("office_summary")
        self.summary.setStyleSheet("font-size: 18px;")
        self.summary.setWordWrap(True)
        self.empty = hint("还没有门岗联系过办公室。门岗加入后（dabai-kiosk fleet join）会出现在这里。\n"
                          "No gate has reached the office yet.")
        self.empty.hide()
        body = QWidget()
        self.list = QVBoxLayout(body)
        self.list.setContentsMargins(0, 0, 6, 0)
        self.list.setSpacing(10)
        self.list.addWidget(self.empty)
        self.list.addStretch(1)
        self.about = hint("")
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.note)
        layout.addWidget(scrolling(body), 1)
        layout.addWidget(self.about)
        self.note.hide()

    @property
    def limit_s(self) -> float:
        return float(self.ctx.config.fleet.out_of_touch_s)

    def on_show(self) -> None:
        self.refresh()
        self.timer.start()

    def on_hide(self) -> None:
        self.timer.stop()

    def refresh(self) -> None:
        """Read the office's database on a worker thread, unless a read is still running."""
        path = self.path
        self._reads.run(lambda: read_office(path), self._loaded)

    def _loaded(self, result: Optional[Tuple[List[Dict[str, Any]], float]], error: Optional[BaseException]) -> None:
        if error is not None or result is None:
            log.warning("office page: cannot read %s: %s", self.path, error)
            self.note.error("无法读取门岗数据（详情见日志）Cannot read the office's database: {}".format(error))
            self.note.show()
            return
        self.note.hide()
        self.show_kiosks(*result)

    def show_kiosks(self, kiosks: List[Dict[str, Any]], now: float) -> None:
        self.kiosks = kiosks
        limit = self.limit_s
        newest = newest_versions(kiosks)
        names = [k["kiosk"] for k in kiosks]
        for name in [n for n in self.cards if n not in names]:
            card = self.cards.pop(name)
            self.list.removeWidget(card)
            card.deleteLater()
        for i, entry in enumerate(kiosks):
            card = self.cards.get(entry["kiosk"])
            if card is None:
                card = KioskCard(entry["kiosk"])
                self.cards[entry["kiosk"]] = card
            if self.list.indexOf(card) != i:
                self.list.removeWidget(card)
                self.list.insertWidget(i, card)
                card.show()  # now, not when the layout gets round to it
            card.show_entry(entry, limit, newest, now)
        self.empty.setVisible(not kiosks)
        lost = [k["kiosk"] for k in kiosks if is_lost(k, limit)]
        if not kiosks:
            self.summary.setText("<b>各门岗</b>：暂无")
        elif lost:
            self.summary.setText("<b>{} 个门岗</b>，<b style='color:{}'>{} 个失联：{}</b>".format(
                len(kiosks), LOST_COLOUR, len(lost), escape("、".join(lost))))
        else:
            self.summary.setText("<b>{} 个门岗</b>，全部在线".format(len(kiosks)))
        self.about.setText("超过 {}未联系即标为失联；每 {} 秒刷新，更新于 {} · Out of touch after {:g} s without "
                           "contact".format(span_zh(limit), REFRESH_MS // 1000, clock_text(now, now), limit))

    def card(self, name: str) -> KioskCard:
        return self.cards[name]
