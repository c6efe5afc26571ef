"""The operator screen of a community of gates (issue 14), offscreen: the 各门岗 page on the office's machine (only
there), listing each gate's last contact, list versions and latest decisions with 失联 for a silent one; and the
out-of-touch banner on a kiosk of a fleet that has not reached its office."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace

import pytest

pytest.importorskip("PyQt5.QtWidgets", reason="PyQt5 not installed (pip install 'dabai-kiosk[ui]')")
pytest.importorskip("pytestqt", reason="pytest-qt not installed")

from kiosk.config import Config, FleetConfig, save_config  # noqa: E402
from kiosk.fleet.logsync import OFFICE_SCHEMA  # noqa: E402
from kiosk.fleet.office import office_database  # noqa: E402
from kiosk.ui.operator import OFFICE_PAGE, PAGES  # noqa: E402
from kiosk.ui.operator.office import ago_zh, clock_text, fleet_warning, out_of_touch_text, span_zh  # noqa: E402

NOW = time.time()  # each test's "now", set when it starts (the suite runs for minutes)


@pytest.fixture(autouse=True)
def _now():
    global NOW
    NOW = time.time()


def write_office(home, now=None):
    """An office.db as the office's Collector leaves it: gate-east heard from 12 s ago, gate-west 2 h ago."""
    now = NOW if now is None else now
    home.root.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(office_database(home)))
    db.executescript(OFFICE_SCHEMA)
    statuses = {
        "gate-east": (now - 12, {"versions": {"revocations": 7, "registry": 12, "policy": 3, "key": 1},
                                 "refused": 2, "last_refused": [["revocations", "version 6 is older than version 7",
                                                                 now - 300]]}),
        "gate-west": (now - 7200, {"versions": {"revocations": 6, "registry": 12, "policy": 3, "key": 1},
                                   "refused": 0, "last_refused": []}),
    }
    for kiosk, (at, status) in statuses.items():
        db.execute("INSERT INTO fleet_status VALUES (?, ?, ?)", (kiosk, at, json.dumps(status)))
    records = {
        "gate-east": [(1, now - 600, "granted", "ok", "张三"), (2, now - 400, "denied", "no_mask", None),
                      (3, now - 20, "granted", "ok", "李四")],
        "gate-west": [(1, now - 7300, "denied", "expired", "王五")],
    }
    for kiosk, rows in records.items():
        for seq, ts, outcome, reason, name in rows:
            db.execute("INSERT INTO fleet_log (kiosk, seq, after, uid, ts, outcome, reason, resident_name, gate_opened, "
                       "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (kiosk, seq, seq - 1, "{}-{}".format(kiosk, seq), ts, outcome, reason, name,
                        int(outcome == "granted"), ts + 1))
        db.execute("INSERT INTO fleet_kiosks VALUES (?, ?, ?)", (kiosk, len(rows), statuses[kiosk][0]))
    db.commit()
    db.close()


def join_fleet(home, name="gate-east", last_contact=None, started=None):
    """A kiosk's data home after ``fleet join`` (fleet/fleet.json) and a run of its link (state/fleet-contact.json)."""
    home.fleet.mkdir(parents=True, exist_ok=True)
    (home.fleet / "fleet.json").write_text(json.dumps({"name": name, "community": "sunny", "host": "office.local",
                                                       "port": 8883}))
    home.state.mkdir(parents=True, exist_ok=True)
    (home.state / "fleet-contact.json").write_text(json.dumps({
        "kiosk": name, "community": "sunny", "started": NOW - 86400 if started is None else started,
        "last_contact": last_contact, "connected": False}))


@pytest.fixture
def shown(operator_screens):
    return lambda **kwargs: operator_screens(show=True, **kwargs)


def office_page(qtbot, screen):
    page = screen.show_page(OFFICE_PAGE)
    qtbot.waitUntil(lambda: len(page.cards) == 2, timeout=5000)
    return page


# ---- the 各门岗 page ------------------------------------------------------------------------------


def test_the_office_page_is_there_only_with_an_office_database(shown, home):
    kiosk = shown()
    assert OFFICE_PAGE not in kiosk.PAGES and OFFICE_PAGE not in kiosk.buttons and kiosk.PAGES == PAGES
    with pytest.raises(ValueError, match="no operator page"):
        kiosk.show_page(OFFICE_PAGE)

    write_office(home)
    office = shown()
    assert office.PAGES.index(OFFICE_PAGE) == office.PAGES.index("system") - 1  # 各门岗 before 系统
    assert office.buttons[OFFICE_PAGE].text().startswith("各门岗") and office.buttons[OFFICE_PAGE].isVisible()
    office.buttons[OFFICE_PAGE].click()
    assert office.current == OFFICE_PAGE and office.pages[OFFICE_PAGE].isVisible()
    hint = office.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 600, hint  # seven pages still fit the kiosk's panel


def test_the_office_page_lists_every_gate_with_its_lists_records_and_decisions(qtbot, shown, home):
    write_office(home)
    page = office_page(qtbot, shown())
    assert list(page.cards) == ["gate-east", "gate-west"]

    east = page.card("gate-east")
    assert east.name.text() == "gate-east"
    assert east.state.text().startswith("在线") and not east.property("lost")
    assert east.contact.text().startswith("最后联系：1") and "秒前" in east.contact.text()
    versions = east.versions.text()
    for words in ("吊销名单 <b>第 7 版</b>", "住户 <b>第 12 版</b>", "规则 <b>第 3 版</b>", "密钥 <b>第 1 版</b>"):
        assert words in versions
    assert "办公室已收到记录 <b>3</b> 条" in east.records.text()
    assert east.refused.isVisibleTo(east) and "拒收 2 条" in east.refused.text() and "吊销名单" in east.refused.text()
    shown_rows = [[label.text() for label in row] for row in east.rows if not row[0].isHidden()]
    assert len(shown_rows) == 3 and not east.no_recent.isVisibleTo(east)
    newest, _, oldest = shown_rows  # newest first, as the log page: outcome and reason in Chinese
    assert "通过 granted" in newest[1] and newest[2] == "通过 ok" and newest[3] == "李四"
    assert "拒绝 denied" in shown_rows[1][1] and shown_rows[1][2] == "未戴口罩 no_mask" and shown_rows[1][3] == "—"
    assert oldest[3] == "张三" and oldest[0] == clock_text(NOW - 600)

    west = page.card("gate-west")
    assert "吊销名单 <b style='color:#9a4d00'>第 6 版（较旧）</b>" in west.versions.text()  # behind gate-east
    assert not west.refused.isVisibleTo(west)  # nothing refused: nothing said
    west_rows = [[label.text() for label in row] for row in west.rows if not row[0].isHidden()]
    assert west_rows == [[west_rows[0][0], west_rows[0][1], "已过期 expired", "王五"]]


def test_a_gate_silent_longer_than_out_of_touch_s_is_marked_lost(qtbot, shown, home):
    write_office(home)
    page = office_page(qtbot, shown())
    west = page.card("gate-west")  # 2 h without a word; out_of_touch_s is 300 s by default
    assert west.state.text().startswith("失联") and west.property("lost") and west.state.property("lost")
    assert west.contact.text().startswith("最后联系：2 小时前")
    assert "1 个失联" in page.summary.text() and "gate-west" in page.summary.text()
    assert not page.card("gate-east").property("lost")
    assert page.cards["gate-west"].isVisible()


def test_the_limit_for_lost_is_the_configured_one(qtbot, shown, home):
    write_office(home)
    save_config(replace(Config(), fleet=FleetConfig(out_of_touch_s=3 * 3600.0)), home.config)
    page = office_page(qtbot, shown())
    assert page.card("gate-west").state.text().startswith("在线") and "全部在线" in page.summary.text()
    assert "3 小时" in page.about.text()


def test_the_page_refreshes_while_shown_and_stops_when_hidden(qtbot, shown, home):
    write_office(home)
    screen = shown()
    page = office_page(qtbot, screen)
    page.timer.setInterval(50)
    db = sqlite3.connect(str(office_database(home)))
    db.execute("INSERT INTO fleet_log (kiosk, seq, after, uid, ts, outcome, reason, resident_name, gate_opened, "
               "received_at) VALUES ('gate-west', 2, 1, 'w2', ?, 'granted', 'ok', '赵六', 1, ?)", (NOW, NOW))
    db.commit()
    db.close()
    qtbot.waitUntil(lambda: page.card("gate-west").rows[0][3].text() == "赵六", timeout=5000)
    screen.show_page("system")
    assert not page.timer.isActive()


def test_an_office_database_that_went_away_says_so(qtbot, shown, home):
    write_office(home)
    screen = shown()
    office_database(home).unlink()
    page = screen.show_page(OFFICE_PAGE)
    qtbot.waitUntil(lambda: page.note.is_error and page.note.isVisibleTo(page), timeout=5000)
    assert page.note.text().startswith("无法读取门岗数据")


def test_the_office_page_is_readable_and_touchable(qtbot, shown, home):
    from kiosk.ui.audit import WCAG_AA, audit, touch_targets

    write_office(home)
    screen = shown()
    page = office_page(qtbot, screen)
    qtbot.wait(200)  # laid out, as a person sees it
    found = audit(page)
    assert any("失联" in r["text"] for r in found)
    assert [r for r in found if r["contrast"] < WCAG_AA] == []
    assert touch_targets(page) == []


# ---- the out-of-touch banner ---------------------------------------------------------------------


def test_a_kiosk_out_of_touch_with_its_office_says_so_on_every_page(qtbot, shown, home):
    join_fleet(home, last_contact=NOW - 3600)
    screen = shown()
    qtbot.waitUntil(lambda: screen.fleet_checked, timeout=5000)
    banner = screen.fleet_banner
    assert banner.isVisible()
    text = banner.text()
    assert text.startswith("与物业办公室失联") and "60 分钟" in text  # in Chinese first
    assert "no contact with the office's broker for 60 min" in text  # the English detail second
    screen.show_page("system")
    assert banner.isVisible()


def test_a_kiosk_that_never_reached_its_office_says_so(qtbot, shown, home):
    join_fleet(home, last_contact=None)
    screen = shown()
    qtbot.waitUntil(lambda: screen.fleet_checked, timeout=5000)
    assert screen.fleet_banner.isVisible() and "从未联系上物业办公室" in screen.fleet_banner.text()


def test_no_banner_when_in_touch_or_on_its_own(qtbot, shown, home):
    alone = shown()
    qtbot.waitUntil(lambda: alone.fleet_checked, timeout=5000)
    assert alone.fleet_reason is None and not alone.fleet_banner.isVisible()

    join_fleet(home, last_contact=time.time() - 5)
    in_touch = shown()
    qtbot.waitUntil(lambda: in_touch.fleet_checked, timeout=5000)
    assert in_touch.fleet_reason is None and not in_touch.fleet_banner.isVisible()


def test_the_banner_comes_and_goes_with_the_contact(qtbot, shown, home):
    join_fleet(home, last_contact=time.time() - 5)
    screen = shown()
    qtbot.waitUntil(lambda: screen.fleet_checked, timeout=5000)
    assert not screen.fleet_banner.isVisible()
    join_fleet(home, last_contact=NOW - 3600)
    screen.check_fleet()
    qtbot.waitUntil(lambda: screen.fleet_banner.isVisible(), timeout=5000)
    join_fleet(home, last_contact=time.time())
    screen.check_fleet()
    qtbot.waitUntil(lambda: not screen.fleet_banner.isVisible(), timeout=5000)


def test_the_office_machine_is_not_out_of_touch_with_itself(home):
    join_fleet(home, name="office", last_contact=None)  # the office's bundle in its data home: no link runs there
    assert fleet_warning(home, FleetConfig()) is None
    join_fleet(home, name="gate-east", last_contact=None)
    assert fleet_warning(home, FleetConfig()) is not None


# ---- words ---------------------------------------------------------------------------------------


def test_times_in_chinese():
    assert ago_zh(12.4) == "12 秒前" and ago_zh(125) == "2 分钟前" and ago_zh(7300) == "2 小时前"
    assert ago_zh(3 * 86400 + 5) == "3 天前" and ago_zh(None) == "从未联系"
    assert span_zh(300) == "5 分钟" and span_zh(90) == "1.5 分钟" and span_zh(7 * 86400) == "7 天"
    text = out_of_touch_text("no contact with the office's broker for 1.5 h (since 2024-05-17 09:30)")
    assert text.startswith("与物业办公室失联：已有 1.5 小时未联系上物业办公室（最后联系于 2024-05-17 09:30）")
