"""The operator screen (issue 5), offscreen: PIN and lockout, the operator flow across a restart, garbage
input refused field by field with nothing saved, and every page shown. No camera, microphone or GPU."""

from __future__ import annotations

import json
import os
import re
import stat
import time
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PyQt5.QtWidgets", reason="PyQt5 not installed (pip install 'dabai-kiosk[ui]')")
pytest.importorskip("pytestqt", reason="pytest-qt not installed")
pytestmark = pytest.mark.usefixtures("fast_pin_hash")

from PyQt5.QtCore import Qt, QTimer  # noqa: E402
from PyQt5.QtWidgets import QDialog  # noqa: E402

from kiosk.config import Config, load_config  # noqa: E402
from kiosk.core.events import Decision  # noqa: E402
from kiosk.ui.operator import OperatorScreen, PinDialog, PinStore  # noqa: E402
from kiosk.ui.operator.pinstore import LOCK_S, MAX_TRIES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO_IMAGE = REPO / "assets" / "demo" / "person1_with_mask.png"
STATUS = {"fps": 14.8, "vision_ms_p50": 13.7, "frame_to_display_ms_p50": 41.0, "detector": "yunet", "backend": "onnxruntime"}


@pytest.fixture
def screen_of(operator_screens):
    """Operator screens with the live figures of a running kiosk (conftest's operator_screens)."""
    return lambda status=lambda: dict(STATUS), **kwargs: operator_screens(status, **kwargs)




@pytest.fixture(autouse=True)
def confirmed(monkeypatch):
    """Every confirmation is answered yes (tests/test_operator_care.py covers the dialogs and "no"); the
    questions asked are kept."""
    from kiosk.ui.operator import residents, screen, widgets

    asked = []

    def yes(parent, question, action, detail=""):
        asked.append(question)
        return True

    for module in (residents, screen, widgets):
        monkeypatch.setattr(module, "confirm", yes)
    return asked


def config_bytes(home):
    return home.config.read_bytes() if home.config.exists() else None


# ---- the PIN ----------------------------------------------------------------------------------


def pin_store(home, clock=None):
    return PinStore.in_home(home, **({"clock": clock} if clock else {}))


def test_pin_is_hashed_private_and_checked(home):
    store = pin_store(home)
    assert not store.is_set()
    store.set_pin("2468")
    assert store.is_set()
    text = store.path.read_text()
    assert "2468" not in text and json.loads(text)["kdf"] in ("scrypt", "pbkdf2-sha256")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.lockout_path.parent == home.state and stat.S_IMODE(os.stat(store.lockout_path).st_mode) == 0o600
    assert store.check("2468").ok
    wrong = store.check("1357")
    assert not wrong.ok and wrong.tries_left == MAX_TRIES - 1 and wrong.locked_until is None
    assert store.check("2468").ok and store.status().tries_left == MAX_TRIES  # a right PIN resets the count


@pytest.mark.parametrize("bad", ["", "123", "123456789", "12a4", "12 34", "１２３４", None, 1234])
def test_pin_rule(home, bad):
    store = pin_store(home)
    with pytest.raises(ValueError, match="4 to 8 digits"):
        store.set_pin(bad)
    assert not store.is_set()


def test_wrong_pins_lock_out_and_the_lock_survives_a_restart(home):
    now = 1_000_000.0
    store = pin_store(home)
    store.set_pin("2468")
    for i in range(MAX_TRIES - 1):
        assert store.check("0000", now=now).tries_left == MAX_TRIES - 1 - i
    locked = store.check("0000", now=now)
    assert not locked.ok and locked.locked_until == now + LOCK_S

    again = pin_store(home)  # a restart
    assert again.status(now=now + 10).locked_until == now + LOCK_S
    assert not again.check("2468", now=now + 10).ok  # even the right PIN is refused while locked
    assert again.check("2468", now=now + LOCK_S + 1).ok  # and works once the lock has passed

    for _ in range(MAX_TRIES):  # the right PIN reset the lockouts: the next lock is the first again
        result = again.check("0000", now=now + 1000)
    assert result.locked_until == now + 1000 + LOCK_S
    for _ in range(MAX_TRIES):  # a second lock in a row doubles
        result = again.check("0000", now=now + 1000 + LOCK_S + 1)
    assert result.locked_until == now + 1000 + LOCK_S + 1 + 2 * LOCK_S
    pin_store(home).reset_lock()
    assert pin_store(home).check("2468", now=now + 1000 + LOCK_S + 2).ok


def test_a_clock_set_back_does_not_lock_for_years(home):
    store = pin_store(home)
    store.set_pin("2468")
    for _ in range(MAX_TRIES):
        store.check("0000", now=2_000_000_000.0)
    assert store.status(now=1_000_000.0).locked_until == 1_000_000.0 + LOCK_S


def test_unreadable_pin_file_never_grants(home):
    store = pin_store(home)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("{broken")
    assert store.is_set()  # it must be reset on purpose, never silently replaced at the kiosk
    result = store.check("1234")
    assert not result.ok and "operator set-pin" in result.error


def test_pin_dialog_needs_the_console_setup_code_before_a_first_pin(qtbot, home, capsys):
    store = pin_store(home)
    dialog = PinDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.setup_mode and dialog.stage == "code"
    code = re.search(r"operator setup code ([0-9]{8}) \(single use", capsys.readouterr().err).group(1)
    assert code not in dialog.message.text() and "setup code printed on the console" in dialog.message.text()
    for _ in range(2):  # whoever touches the corner first cannot just choose a PIN
        qtbot.keyClicks(dialog.entry, "1357")
        dialog.submit()
    assert dialog.stage == "code" and not store.is_set() and dialog.result() != QDialog.Accepted
    assert "Wrong setup code: {} tries left".format(MAX_TRIES - 2) in dialog.message.text()
    for key in code:
        dialog.press(key)
    dialog.submit()
    assert dialog.stage == "choose" and not store.is_set() and not store.setup_path.exists()  # used up

    for key in "135":
        dialog.press(key)
    dialog.submit()
    assert "4–8" in dialog.message.text() and not store.is_set()
    for attempt in ("1357", "1358"):  # typed differently the second time
        for key in attempt:
            dialog.press(key)
        dialog.submit()
    assert "differ" in dialog.message.text() and not store.is_set()
    for _ in range(2):
        qtbot.keyClicks(dialog.entry, "1357")  # a keyboard works too
        qtbot.keyClick(dialog.entry, Qt.Key_Return)
    assert dialog.result() == QDialog.Accepted and store.check("1357").ok
    assert store.status().tries_left == MAX_TRIES  # the right code cleared the wrong tries


def test_pin_dialog_refuses_an_expired_code_and_locks_after_wrong_codes(qtbot, home):
    from kiosk.ui.operator.pinstore import SETUP_VALID_S

    now = [1_000_000.0]
    store = pin_store(home, clock=lambda: now[0])
    codes = []
    dialog = PinDialog(store, announce=lambda code, expires: codes.append((code, expires)))
    qtbot.addWidget(dialog)
    assert codes[0][1] == now[0] + SETUP_VALID_S
    now[0] += SETUP_VALID_S
    qtbot.keyClicks(dialog.entry, codes[0][0])
    dialog.submit()
    assert "expired" in dialog.message.text() and dialog.stage == "code" and not dialog.locked

    again = PinDialog(store, announce=lambda code, expires: codes.append((code, expires)))  # the corner again
    qtbot.addWidget(again)
    wrong = "1" + codes[1][0][1:] if codes[1][0][0] != "1" else "2" + codes[1][0][1:]
    for _ in range(MAX_TRIES):
        qtbot.keyClicks(again.entry, wrong)
        again.submit()
    assert again.locked and not again.ok_button.isEnabled() and "locked until" in again.message.text()
    qtbot.keyClicks(again.entry, codes[1][0])
    again.submit()  # the keypad is off; the right code is refused while locked anyway
    assert store.use_setup_code(codes[1][0]).locked_until is not None and not store.is_set()


def test_pin_dialog_accepts_only_the_right_pin_and_shows_the_lock(qtbot, home):
    store = pin_store(home)
    store.set_pin("2468")
    dialog = PinDialog(store)
    qtbot.addWidget(dialog)
    for key in "1111":
        dialog.press(key)
    dialog.press("back")
    dialog.press("2")
    assert dialog.entry.text() == "1112"
    dialog.submit()
    assert dialog.result() != QDialog.Accepted and "{} tries left".format(MAX_TRIES - 1) in dialog.message.text()
    for _ in range(MAX_TRIES - 2):
        qtbot.keyClicks(dialog.entry, "9999")
        dialog.submit()
    assert "还可尝试 1 次" in dialog.message.text() and "1 try left" in dialog.message.text()
    qtbot.keyClicks(dialog.entry, "9999")
    dialog.submit()
    assert dialog.locked and not dialog.buttons["5"].isEnabled() and "locked until" in dialog.message.text()
    assert "联系" in dialog.message.text() and "reset" in dialog.message.text()  # what to do, not only what happened

    restarted = PinDialog(pin_store(home))  # the lock is on disk
    qtbot.addWidget(restarted)
    assert restarted.locked and not restarted.ok_button.isEnabled()

    store.reset_lock()
    fresh = PinDialog(pin_store(home))
    qtbot.addWidget(fresh)

    def type_pin():
        for key in "2468":
            fresh.press(key)
        fresh.submit()

    QTimer.singleShot(0, type_pin)
    assert fresh.exec_() == QDialog.Accepted


# ---- the operator flow ------------------------------------------------------------------------


def test_operator_flow_persists_across_a_restart(qtbot, home, screen_of, tmp_path):
    import cv2

    from kiosk.runtime.assemble import open_store, pass_checker
    from kiosk.vision.qr import decode_qr

    screen = screen_of()
    residents = screen.show_page("residents")
    residents.name_edit.setText("张三")
    residents.unit_edit.setText("3-201")
    residents.add_button.click()
    assert residents.table.rowCount() == 1 and residents.selected_id() == 1
    residents.days_edit.setText("30")
    token = residents.issue()
    assert token and residents.card is not None
    png = tmp_path / "pass.png"
    assert residents.save_png(str(png))
    assert decode_qr(cv2.imread(str(png))) == [token]

    policy = screen.show_page("policy")
    policy.form.set_value("mask_required", False)
    policy.form.set_value("vote_window", "7")
    policy.form.set_value("engaged_timeout_s", "25")
    with qtbot.waitSignal(screen.config_saved) as saved:
        assert policy.save()
    assert isinstance(saved.args[0], Config) and saved.args[0].policy.vote_window == 7
    with qtbot.waitSignal(screen.closed):
        screen.exit_button.click()

    again = screen_of()  # a restart: new screen, new store, same home
    residents = again.show_page("residents")
    assert residents.table.item(0, 1).text() == "张三" and residents.table.item(0, 4).text() == "1"
    policy = again.show_page("policy")
    assert policy.form.values()["mask_required"] is False and policy.form.values()["vote_window"] == 7
    config = load_config(home.config)
    assert config.policy.vote_window == 7 and config.policy.engaged_timeout_s == 25.0 and not config.policy.mask_required
    store = open_store(home)
    try:
        check = pass_checker(home, store.registry)(token)
        assert check.valid and check.resident_name == "张三"
    finally:
        store.close()


def test_residents_edit_revoke_and_pass_revoke(screen_of):
    screen = screen_of()
    page = screen.show_page("residents")
    page.name_edit.setText("李四")
    page.unit_edit.setText("5-502")
    page.add()
    page.name_edit.setText("李四四")
    page.unit_edit.setText("5-503")
    page.save_button.click()
    assert page.registry.get(1).name == "李四四" and page.registry.get(1).unit == "5-503"
    page.issue()
    assert not page.revoke_pass_button.isEnabled()  # a pass is revoked only once the operator picks it
    page.passes.setCurrentRow(0)
    page.revoke_pass_button.click()
    assert page.registry.passes_of(1)[0].revoked_at is not None
    page.revoke_button.click()
    assert not page.registry.get(1).active and page.revoke_button.text().startswith("恢复")
    assert page.issue() is None and "revoked" in page.note.text()  # a revoked resident gets no pass
    page.revoke_button.click()
    assert page.registry.get(1).active
    page.name_edit.setText("王五")
    page.unit_edit.setText("1-101")
    page.add()
    page.search.setText("1-101")
    assert [page.table.isRowHidden(row) for row in range(2)] == [True, False]


# ---- garbage in, nothing saved ----------------------------------------------------------------


@pytest.mark.parametrize("name, unit, field, words", [
    ("", "3-201", "name", "不能为空"),
    ("   ", "3-201", "name", "must not be empty"),
    ("张三", "", "unit", "不能为空"),
    ("张三", "3" * 300, "unit", "at most 32"),
    ("张" * 300, "3-201", "name", "at most 64"),
    ("张\x00三", "3-201", "name", "control characters"),
])
def test_garbage_resident_is_refused(screen_of, name, unit, field, words):
    page = screen_of().show_page("residents")
    page.name_edit.setText(name)
    page.unit_edit.setText(unit)
    assert page.add() is None
    error = page.name_error if field == "name" else page.unit_error
    assert words in error.text() and not error.isHidden() and page.note.is_error
    assert page.registry.list() == []


@pytest.mark.parametrize("days", ["", "abc", "-5", "0", "99999", "nan"])
def test_garbage_pass_days_issue_nothing(screen_of, days):
    page = screen_of().show_page("residents")
    page.name_edit.setText("张三")
    page.unit_edit.setText("3-201")
    page.add()
    page.days_edit.setText(days)
    assert page.issue() is None and page.days_error.text() and page.registry.passes_of(1) == []


@pytest.mark.parametrize("page_name, form, key, value, words", [
    ("gate", "form", "pulse_ms", "-5", "须在 50 到 10000 之间"),
    ("gate", "form", "pulse_ms", "abc", "须为整数"),
    ("gate", "form", "pulse_ms", "", "must be a whole number"),
    ("gate", "form", "gpio_pin", "99", "between 1 and 40"),
    ("gate", "form", "gpio_pin", "6", "ground pin"),
    ("gate", "form", "serial_open_hex", "zz", "hex bytes"),
    ("policy", "form", "engaged_timeout_s", "soon", "须为数字"),
    ("policy", "form", "engaged_timeout_s", "nan", "must be a number"),
    ("policy", "form", "min_confidence", "1.5", "between 0.0 and 1.0"),
    ("policy", "form", "vote_min", "9", "must not exceed policy.vote_window"),
    ("policy", "community", "name", "小" * 300, "at most 256"),
    ("policy", "community", "name", "大白\n小区", "control characters"),
    ("devices", "camera", "source", "/dev/video99", "no such device"),
    ("devices", "camera", "source", "", "must not be empty"),
    ("devices", "camera", "width", "-640", "between 160 and 4096"),
    ("devices", "listen", "source", "no-such-microphone-xyz", "no such device|cannot check the device"),
    ("devices", "listen", "source", "wav:/nonexistent/file.wav", "no such file"),
    ("devices", "speech", "output", "no-such-speaker-xyz", "no such device|cannot check the device"),
])
def test_garbage_config_input_is_refused_next_to_its_field(qtbot, home, screen_of, page_name, form, key, value, words):
    screen = screen_of()
    page = screen.show_page(page_name)
    if page_name == "devices":
        qtbot.waitUntil(lambda: bool(page.found), timeout=10000)  # the device lists, probed on a worker thread
    target = getattr(page, form)
    before = config_bytes(home)
    saved = []
    screen.config_saved.connect(saved.append)
    target.set_value(key, value)
    assert not page.save()
    assert re.search(words, target.error_text(key)) and not target.errors[key].isHidden()
    assert page.note.is_error and "Not saved" in page.note.text()
    assert config_bytes(home) == before and saved == []


def test_gate_settings_save_and_test_pulse(qtbot, home, screen_of):
    from kiosk.gate.drivers import SimulatedGate

    lent = SimulatedGate()
    screen = screen_of(gate=lent)
    page = screen.show_page("gate")
    page.form.set_value("pulse_ms", "600")
    page.form.set_value("serial_port", "/dev/ttyUSB9")  # fine: the driver is sim, the port is not used
    assert page.save() and load_config(home.config).gate.pulse_ms == 600
    page.test_button.click()
    qtbot.waitUntil(lambda: page.last_test is not None, timeout=5000)
    assert page.last_test == "ok" and lent.pulses and lent.pulses[-1][1] == 600

    page.form.set_value("pulse_ms", "-5")  # the test refuses bad settings too, and pulses nothing
    page.test_pulse()
    assert "-5" in page.form.error_text("pulse_ms") and len(lent.pulses) == 1

    page.form.set_value("pulse_ms", "600")
    page.form.set_value("driver", "serial")
    assert not page.save() and "no such device" in page.form.error_text("serial_port")


# ---- devices ----------------------------------------------------------------------------------


def test_camera_preview_runs_off_the_gui_thread(qtbot, home, screen_of):
    screen = screen_of()
    page = screen.show_page("devices")
    page.camera.set_value("source", str(DEMO_IMAGE))
    assert page.save() and load_config(home.config).camera.source == str(DEMO_IMAGE)
    qtbot.waitUntil(lambda: page.frames_shown > 0, timeout=10000)
    assert page.image.pixmap() is not None and not page.image.pixmap().isNull()
    preview = page.preview
    screen.show_page("system")  # leaving the page stops the preview
    assert page.preview is None and not preview.running


def test_lent_frames_preview_the_running_camera(qtbot, screen_of):
    frame = np.zeros((480, 640, 3), np.uint8)
    screen = screen_of(frames=lambda: frame)
    page = screen.show_page("devices")  # camera.source = "0" (the default) is busy in the app: its frames are shown
    qtbot.waitUntil(lambda: page.frames_shown > 0, timeout=5000)


def write_tone(path: Path, seconds: float = 1.0, rate: int = 16000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def test_microphone_level_meter(qtbot, screen_of, tmp_path):
    wav = tmp_path / "tone.wav"
    write_tone(wav)
    page = screen_of().show_page("devices")
    qtbot.waitUntil(lambda: bool(page.found), timeout=10000)
    page.listen.set_value("source", "wav:{}".format(wav))
    page.meter_button.setChecked(True)
    qtbot.waitUntil(lambda: page.last_level is not None, timeout=5000)
    assert -20 < page.last_level < 0 and page.level.value() > 30  # a 0.3 sine: about -13 dBFS
    page.meter_button.setChecked(False)
    assert page.meter is None


def test_test_sound_with_the_voice_off(qtbot, screen_of):
    page = screen_of().show_page("devices")
    page.speech.set_value("tts", "none")
    page.test_sound()
    qtbot.waitUntil(lambda: "Voice is off" in page.sound_note.text() or page.sound_note.is_error, timeout=5000)
    assert "Voice is off" in page.sound_note.text()


# ---- access log and system --------------------------------------------------------------------


def test_access_log_filters_and_export(qtbot, home, screen_of, tmp_path):
    from kiosk.runtime.assemble import open_store

    store = open_store(home, writer=True)
    now = time.time()
    store.access_log.append(Decision("granted", "ok", mask="with_mask", pass_reason="ok", resident_id=1,
                                     resident_name="张三", pass_serial=1, gate_opened=True), ts=now - 60)
    store.access_log.append(Decision("denied", "no_mask", mask="without_mask"), ts=now - 30)
    store.access_log.append(Decision("denied", "expired", pass_reason="expired", resident_id=2, resident_name="李四",
                                     pass_serial=2), ts=now - 40 * 86400)
    store.close()

    page = screen_of().show_page("log")
    qtbot.waitUntil(lambda: page.filter_button.isEnabled() and len(page.rows) == 2, timeout=5000)  # the last 7 days

    def refresh_to(n):
        page.refresh()
        qtbot.waitUntil(lambda: page.filter_button.isEnabled(), timeout=5000)
        assert len(page.rows) == n, [r["reason"] for r in page.rows]

    page.outcome.setCurrentIndex(page.outcome.findData("denied"))
    refresh_to(1)
    page.outcome.setCurrentIndex(0)
    page.since.setDate(page.since.date().addDays(-60))
    refresh_to(3)
    page.reason.setCurrentIndex(page.reason.findData("expired"))
    refresh_to(1)
    page.reason.setCurrentIndex(0)
    page.resident.setText("张")
    refresh_to(1)
    page.resident.setText("2")  # an id
    refresh_to(1)
    page.resident.setText("nobody'; DROP TABLE access_log; --")
    refresh_to(0)
    page.resident.setText("")

    page.since.setDate(page.until.date().addDays(1))  # the wrong way round
    page.refresh()
    assert page.note.is_error and "after the end date" in page.note.text()

    page.since.setDate(page.until.date().addDays(-60))
    out = tmp_path / "log.csv"
    page.export_csv(str(out))
    qtbot.waitUntil(lambda: out.exists() and "Exported" in page.note.text(), timeout=5000)
    lines = out.read_text(encoding="utf-8").strip().splitlines()
    assert lines[0].startswith("time,uid,ts,outcome") and len(lines) == 4 and "张三" in out.read_text(encoding="utf-8")

    page.outcome.setCurrentIndex(page.outcome.findData("denied"))  # the export follows the filters
    filtered = tmp_path / "denied.csv"
    page.export_csv(str(filtered))
    qtbot.waitUntil(lambda: filtered.exists() and "Exported" in page.note.text(), timeout=5000)
    text = filtered.read_text(encoding="utf-8")
    assert len(text.strip().splitlines()) == 3 and "张三" not in text and "李四" in text


def test_system_page_shows_status_and_tolerates_missing_figures(qtbot, screen_of):
    page = screen_of(status=lambda: {"fps": 12.5, "camera": "ok", "extra_figure": 3}).show_page("system")
    assert page.live.text("帧率 FPS") == "12.5"
    assert page.live.text("推理后端 Backend") == "不可用 unavailable"
    assert page.live.text("extra_figure") == "3"
    qtbot.waitUntil(lambda: page.models.text("人脸模型 Face model") != "", timeout=10000)
    assert page.models.text("人脸模型 Face model") == Config().vision.face_model

    def broken():
        raise RuntimeError("the app is busy")

    page = screen_of(status=broken).show_page("system")
    assert page.live.text("帧率 FPS") == "不可用 unavailable"


def test_system_figures_from_proc_and_sys(tmp_path):
    from kiosk.ui.operator.system import cpu_percent, read_cpu_times, read_gpu_load, read_memory, read_temperatures

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "stat").write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n")
    (tmp_path / "proc" / "meminfo").write_text("MemTotal:  8192000 kB\nMemAvailable: 4096000 kB\n")
    zone = tmp_path / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("CPU-therm\n")
    (zone / "temp").write_text("45500\n")
    gpu = tmp_path / "sys" / "devices" / "gpu.0"
    gpu.mkdir(parents=True)
    (gpu / "load").write_text("374\n")
    before = read_cpu_times(tmp_path)
    assert before == (800, 1000)
    assert cpu_percent(before, (850, 1100)) == 50.0 and cpu_percent(before, before) is None
    assert read_temperatures(tmp_path) == [("CPU-therm", 45.5)]
    assert read_gpu_load(tmp_path) == 37.4
    assert read_memory(tmp_path) == (4000.0, 8000.0)
    empty = tmp_path / "nothing"
    assert read_cpu_times(empty) is None and read_gpu_load(empty) is None and read_temperatures(empty) == []


# ---- the screen -------------------------------------------------------------------------------


def test_every_page_can_be_shown(qtbot, screen_of):
    screen = screen_of()
    screen.show()
    for name in OperatorScreen.PAGES:
        page = screen.show_page(name)
        assert screen.stack.currentWidget() is page and screen.buttons[name].isChecked() and page.isVisible()
        hint = screen.minimumSizeHint()
        assert hint.width() <= 1024 and hint.height() <= 600, (name, hint)  # fits the kiosk's smallest screen
    screen.buttons["policy"].click()
    assert screen.current == "policy"
    with pytest.raises(ValueError, match="no operator page"):
        screen.show_page("nonsense")


def test_idle_screen_closes_itself(qtbot, screen_of):
    screen = screen_of(idle_timeout_s=0.05)
    with qtbot.waitSignal(screen.closed, timeout=3000):
        screen.show()


def test_operator_set_pin_command(home, capsys):
    from kiosk.cli import main

    assert main(["operator", "set-pin", "--pin", "12"]) == 2
    assert "4 to 8 digits" in capsys.readouterr().err and not pin_store(home).is_set()
    assert main(["operator", "set-pin", "--pin", "24680"]) == 0
    assert pin_store(home).check("24680").ok
    for _ in range(MAX_TRIES):
        pin_store(home).check("0000")
    assert pin_store(home).status().locked_until is not None
    assert main(["operator", "reset-lock"]) == 0
    assert pin_store(home).check("24680").ok


def test_default_pin_hash_is_slow(monkeypatch):
    from kiosk.ui.operator import pinstore

    monkeypatch.undo()  # the real parameters, not the fast ones of the other tests
    params = pinstore._kdf_params()
    assert (params["kdf"] == "scrypt" and params["n"] >= 2 ** 14) or params["iterations"] >= 200000


def test_gate_test_uses_the_apps_current_driver(qtbot, screen_of):
    from kiosk.gate.drivers import SimulatedGate

    current = SimulatedGate()
    page = screen_of(gate=lambda: current).show_page("gate")
    page.test_pulse()
    qtbot.waitUntil(lambda: page.last_test is not None, timeout=5000)
    assert page.last_test == "ok" and [ms for _, ms in current.pulses] == [800]
