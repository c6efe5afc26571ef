"""The operator screen's terminal functions (issue 13, item 6, and item 4 for the System page), offscreen: change the
PIN, restart the program, reboot and power off (behind a confirmation, through an injected runner: nothing is ever
rebooted), device information from a fake root, remote open with a reason, and every action in the access log,
shown on the Log page and by ``dabai-kiosk log``. No camera, microphone or GPU."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

pytest.importorskip("PyQt5.QtWidgets", reason="PyQt5 not installed (pip install 'dabai-kiosk[ui]')")
pytest.importorskip("pytestqt", reason="pytest-qt not installed")

from PyQt5.QtCore import QTimer  # noqa: E402
from PyQt5.QtWidgets import QApplication, QMessageBox  # noqa: E402

from kiosk.gate.drivers import SimulatedGate  # noqa: E402
from kiosk.runtime import deviceinfo, power  # noqa: E402
from kiosk.ui.operator import OperatorScreen, PinStore, system  # noqa: E402
from kiosk.ui.operator import gate as gate_page  # noqa: E402
from kiosk.ui.operator.pin import ChangePinDialog  # noqa: E402
from kiosk.ui.operator.pinstore import MAX_TRIES  # noqa: E402

# What KioskController.status() says on a machine with problems (and the counter the app adds for the screen).
pytestmark = pytest.mark.usefixtures("fast_pin_hash")
TROUBLED = {
    "fps": 0.0, "vision_ms_p50": 13.7, "frame_to_display_ms_p50": 41.0, "longest_ui_stall_ms": 30.0,
    "detector": "unavailable: ModuleNotFoundError: No module named 'onnxruntime'", "backend": "auto",
    "camera": "unavailable: /dev/video0: [Errno 2] No such file or directory (0)", "microphone": "OSError: no device",
    "gate": "fault: the gpio relay did not open", "voice": "silent: RuntimeError: espeak-ng failed",
    "frames_processed": 120,
}




@pytest.fixture(autouse=True)
def never_for_real(monkeypatch):
    """No test may run systemctl or re-execute itself; no restart handler is left over from another test."""

    def refuse(argv, *args, **kwargs):
        raise AssertionError("a test tried to run {} for real".format(argv))

    monkeypatch.setattr(power, "run_command", refuse)
    monkeypatch.setattr(power, "_handler", None)


@pytest.fixture
def store(home):
    """The kiosk's access log, as the app holds it (a writer)."""
    from kiosk.runtime.assemble import open_store

    opened = open_store(home, writer=True)
    yield opened
    opened.close()


@pytest.fixture
def screen_of(operator_screens, store):
    """Operator screens whose actions go into ``store``'s access log, as the app's do."""

    def make(status=lambda: {}, **kwargs):
        kwargs.setdefault("record", lambda decision: store.access_log.append(decision, durable=True))
        return operator_screens(status, **kwargs)

    return make


def answer(monkeypatch, module, yes):
    """Answer every confirmation of ``module`` with ``yes``; returns the questions asked."""
    asked = []

    def reply(parent, question, action, detail=""):
        asked.append((question, action))
        return yes

    monkeypatch.setattr(module, "confirm", reply)
    return asked


def operator_rows(store):
    return store.access_log.list(outcome="operator")


def reasons(store):
    return [r["reason"] for r in reversed(operator_rows(store))]


class Runner:
    """Stands in for systemctl: records the commands and answers with ``status`` and ``output``."""

    def __init__(self, status=0, output=""):
        self.calls = []
        self.status, self.output = status, output

    def __call__(self, argv):
        self.calls.append(list(argv))
        return self.status, self.output


def on_modal(qtbot, act):
    """Run ``act(dialog)`` on the modal dialog as soon as it is open (it blocks in exec_ meanwhile)."""
    done = []

    def attempt():
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(10, attempt)
            return
        act(dialog)
        done.append(dialog)

    QTimer.singleShot(0, attempt)
    return done


# ---- changing the PIN -----------------------------------------------------------------------------------


def test_change_pin_refuses_and_counts_a_wrong_current_pin(qtbot, home, screen_of, store):
    PinStore.in_home(home).set_pin("2468")
    page = screen_of().show_page("system")
    seen = {}

    def wrong(dialog):
        assert isinstance(dialog, ChangePinDialog) and dialog.stage == "current"
        dialog.type_digits("1111")
        seen["message"], seen["stage"] = dialog.message.text(), dialog.stage
        dialog.reject()

    on_modal(qtbot, wrong)
    assert page.change_pin() is False
    assert seen["stage"] == "current" and "当前密码错误" in seen["message"]
    assert "{} tries left".format(MAX_TRIES - 1) in seen["message"]
    assert PinStore.in_home(home).status().tries_left == MAX_TRIES - 1  # counted, as at the PIN dialog
    assert PinStore.in_home(home).check("2468").ok and "pin_changed" not in reasons(store)


def test_wrong_current_pins_lock_the_change_dialog_too(qtbot, home):
    store = PinStore.in_home(home)
    store.set_pin("2468")
    dialog = ChangePinDialog(store)
    qtbot.addWidget(dialog)
    for _ in range(MAX_TRIES):
        dialog.type_digits("0000")
    assert dialog.locked and not dialog.ok_button.isEnabled() and "locked until" in dialog.message.text()
    assert store.status().locked_until is not None
    again = ChangePinDialog(PinStore.in_home(home))  # the lock is on disk: the operator PIN dialog is locked too
    qtbot.addWidget(again)
    assert again.locked


def test_change_pin_refuses_a_mismatch_and_a_bad_pin(qtbot, home):
    store = PinStore.in_home(home)
    store.set_pin("2468")
    dialog = ChangePinDialog(store)
    qtbot.addWidget(dialog)
    dialog.type_digits("2468")
    assert dialog.stage == "new"
    dialog.type_digits("12")
    assert dialog.stage == "new" and "4–8" in dialog.message.text()
    dialog.type_digits("1357")
    assert dialog.stage == "confirm"
    dialog.type_digits("1358")
    assert dialog.stage == "new" and "differ" in dialog.message.text()
    assert not dialog.result() and store.check("2468").ok and not store.check("1357").ok


def test_change_pin_stores_the_new_pin_and_records_it(qtbot, home, screen_of, store):
    PinStore.in_home(home).set_pin("2468")
    page = screen_of().show_page("system")
    on_modal(qtbot, lambda dialog: [dialog.type_digits(d) for d in ("2468", "135790", "135790")])
    assert page.change_pin() is True
    assert PinStore.in_home(home).check("135790").ok and not PinStore.in_home(home).check("2468").ok
    assert reasons(store) == ["pin_changed"] and "修改" in page.power_note.text()
    assert "135790" not in str(operator_rows(store))  # the PIN itself is never logged


# ---- restart, reboot, power off ------------------------------------------------------------------------


@pytest.mark.parametrize("action, argv", [("reboot", ["systemctl", "reboot"]), ("power_off", ["systemctl", "poweroff"])])
def test_reboot_and_power_off_need_a_confirmation(qtbot, monkeypatch, screen_of, store, action, argv):
    page = screen_of().show_page("system")
    runner = page.runner = Runner()
    asked = answer(monkeypatch, system, False)
    assert getattr(page, action)() is False
    qtbot.wait(50)
    assert runner.calls == [] and reasons(store) == [] and len(asked) == 1  # cancelled: nothing ran

    asked = answer(monkeypatch, system, True)
    assert getattr(page, action)() is True
    qtbot.waitUntil(lambda: page.last_power is not None, timeout=5000)
    assert runner.calls == [argv] and page.last_power.ok and not page.power_note.is_error
    assert reasons(store) == [action]
    assert "闸机" in asked[0][0] and asked[0][1].startswith(("重启设备", "关机"))  # it names what happens


def test_the_confirmation_dialog_is_really_clicked(qtbot, screen_of, store):
    page = screen_of().show_page("system")
    runner = page.runner = Runner()
    texts = []

    def click(label):
        def act(box):
            assert isinstance(box, QMessageBox) and box.defaultButton().text().startswith("取消")  # Cancel is the default
            texts.append(box.text())
            next(b for b in box.buttons() if b.text().startswith(label)).click()
        return act

    on_modal(qtbot, click("取消"))
    assert page.reboot() is False and runner.calls == []
    on_modal(qtbot, click("重启设备"))
    assert page.reboot() is True
    qtbot.waitUntil(lambda: page.last_power is not None, timeout=5000)
    assert runner.calls == [["systemctl", "reboot"]] and reasons(store) == ["reboot"]
    assert all("重启整台设备" in t for t in texts)


@pytest.mark.parametrize("status, output, words, reason", [
    (1, "Failed to reboot system via logind: Interactive authentication required.", "sudo make install", "not_permitted"),
    (1, "Failed to reboot system via logind: Access denied", "需要安装程序授予权限", "not_permitted"),
    (127, "[Errno 2] No such file or directory: 'systemctl'", "systemctl", "no_systemctl"),
    (1, "Failed to connect to bus: Connection refused", "失败", "failed"),
])
def test_a_refused_reboot_says_what_to_do(qtbot, monkeypatch, screen_of, store, caplog, status, output, words, reason):
    page = screen_of().show_page("system")
    page.runner = Runner(status, output)
    answer(monkeypatch, system, True)
    page.reboot()
    qtbot.waitUntil(lambda: page.last_power is not None, timeout=5000)
    assert page.power_note.is_error and words in page.power_note.text()
    assert "Errno" not in page.power_note.text() and "logind" not in page.power_note.text()  # details: the log
    assert output.split()[-1] in caplog.text
    assert reasons(store) == ["reboot", "reboot_failed: " + reason]
    assert page.reboot_button.isEnabled()


def test_power_functions_on_their_own():
    runner = Runner()
    assert power.reboot(runner).ok and power.power_off(runner).ok
    assert runner.calls == [["systemctl", "reboot"], ["systemctl", "poweroff"]]
    with pytest.raises(AssertionError, match="for real"):  # the default runner is looked up at each call
        power.reboot()


def test_restart_needs_a_confirmation_and_asks_the_app(qtbot, monkeypatch, screen_of, store):
    page = screen_of().show_page("system")
    answer(monkeypatch, system, True)
    assert page.restart_app() is False  # no app listens (a bare screen): said, nothing recorded
    assert page.power_note.is_error and reasons(store) == []

    asked = []
    power.set_restart_handler(lambda: asked.append(1))
    answer(monkeypatch, system, False)
    assert page.restart_app() is False and asked == [] and reasons(store) == []
    answer(monkeypatch, system, True)
    assert page.restart_app() is True and asked == [1] and reasons(store) == ["restart_app"]


def test_restart_after_exit_exits_under_systemd_and_reexecutes_otherwise(monkeypatch):
    calls = []
    monkeypatch.setattr("atexit._run_exitfuncs", lambda: calls.append("atexit"))
    execv = lambda path, argv: calls.append((path, argv))  # noqa: E731
    assert power.restart_after_exit(0, {"INVOCATION_ID": "abc"}, execv=execv) == 0 and calls == []
    assert power.restart_after_exit(4, {"NOTIFY_SOCKET": "/run/systemd/notify"}, execv=execv) == 4 and calls == []
    assert power.restart_after_exit(0, {}, execv=execv) == 0
    assert calls[0] == "atexit" and calls[1][1][0] == calls[1][0]  # the exit handlers first (the relay), then exec

    def fails(path, argv):
        raise OSError("no such file")

    assert power.restart_after_exit(0, {}, execv=fails) == 0  # said in the log; the process then exits
    assert power.restart_argv(["/venv/bin/dabai-kiosk", "run"], "/venv/bin/python", "") == \
        ["/venv/bin/python", "/venv/bin/dabai-kiosk", "run"]
    assert power.restart_argv(["/src/kiosk/__main__.py", "run", "--demo"], "/usr/bin/python3", "kiosk.__main__") == \
        ["/usr/bin/python3", "-m", "kiosk", "run", "--demo"]
    assert power.under_systemd({"INVOCATION_ID": "x"}) and not power.under_systemd({})


# ---- device information --------------------------------------------------------------------------------

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     |-- 192.168.1.0
        /24 link UNICAST
     |-- 192.168.1.23
        /32 host LOCAL
     |-- 192.168.1.255
        /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 192.168.1.23
        /32 host LOCAL
"""
IF_INET6 = ("00000000000000000000000000000001 01 80 10 80       lo\n"
            "fe80000000000000021b21fffe3a4b5c 02 40 20 80     eth0\n"
            "20010db8000000000000000000000001 02 40 00 00     eth0\n")


def fake_root(tmp_path):
    root = tmp_path / "root"
    files = {
        "proc/device-tree/model": "NVIDIA Jetson Orin Nano Developer Kit\x00",
        "etc/nv_tegra_release": "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64\n",
        "etc/os-release": 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\n',
        "proc/uptime": "93784.12 351234.55\n",
        "proc/net/fib_trie": FIB_TRIE,
        "proc/net/if_inet6": IF_INET6,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_device_information_readers_on_a_fake_root(tmp_path):
    root = fake_root(tmp_path)
    assert deviceinfo.read_model(root) == "NVIDIA Jetson Orin Nano Developer Kit"
    assert deviceinfo.read_l4t(root) == (6, "36.3.0")
    assert deviceinfo.read_os(root) == "Ubuntu 22.04.4 LTS"
    assert deviceinfo.read_uptime(root) == 93784.12
    assert deviceinfo.format_uptime(93784.12) == "1 天 2 小时 3 分 (1 d 2 h 3 min)"
    assert deviceinfo.read_ipv4(root) == ["192.168.1.23"]
    assert deviceinfo.read_ipv6(root) == ["2001:db8::1"]

    pc = tmp_path / "pc"  # not a Jetson: the DMI names
    (pc / "sys" / "class" / "dmi" / "id").mkdir(parents=True)
    (pc / "sys" / "class" / "dmi" / "id" / "product_name").write_text("OptiPlex 7090\n")
    (pc / "sys" / "class" / "dmi" / "id" / "sys_vendor").write_text("Dell Inc.\n")
    assert deviceinfo.read_model(pc) == "Dell Inc. OptiPlex 7090"
    assert deviceinfo.read_l4t(pc) is None and deviceinfo.read_os(pc) is None and deviceinfo.read_uptime(pc) is None
    assert deviceinfo.read_ipv4(pc) == [] and deviceinfo.read_ipv6(pc) == []

    info = deviceinfo.device_info(tmp_path, root)
    free, total = info["disk"]
    assert 0 <= free <= total and info["home"] == str(tmp_path)
    versions = info["versions"]
    assert versions["python"] and versions["kiosk"] and versions["opencv"] and versions["qt"]
    rows = dict(system.device_rows(info))
    assert rows["JetPack 版本 JetPack release"] == "JetPack 6 (L4T 36.3.0)"
    assert rows["IP 地址 IP addresses"] == "192.168.1.23, 2001:db8::1"
    assert rows["TensorRT"].startswith(versions["tensorrt"] or "未安装")


def test_the_system_page_shows_the_device_information(qtbot, screen_of, home):
    page = screen_of().show_page("system")
    qtbot.waitUntil(lambda: page.device.text("型号 Model") != "", timeout=10000)
    assert page.device.text("数据目录 Data folder") == str(home.root)
    assert re.match(r"\d+\.\d / \d+\.\d GB", page.device.text("磁盘空间 Disk (free / total)"))


# ---- the System page speaks to the operator (item 4) ---------------------------------------------------


def test_the_system_page_shows_no_keys_or_exception_texts(qtbot, screen_of, caplog):
    page = screen_of(status=lambda: dict(TROUBLED)).show_page("system")
    qtbot.waitUntil(lambda: page.models.text("可用后端 Backends here") != "", timeout=10000)
    shown = " ".join(page.live.labels() + page.models.labels() + page.load.labels() + page.device.labels() +
                     [label.text() for table in (page.live, page.models) for label in table.values.values()])
    for raw in ("longest_ui_stall_ms", "vision_ms_p50", "frames_processed", "Error", "Errno", "Traceback",
                "fault:", "silent:", "unavailable:"):
        assert raw not in shown, raw
    assert "界面最长卡顿" in shown and page.live.text("界面最长卡顿 Longest screen freeze") == "30.0 ms"
    assert "请检查摄像头" in page.live.text("摄像头 Camera") and "source: 0" in page.live.text("摄像头 Camera")
    assert "继电器" in page.live.text("闸机 Gate") and "未加载识别模型" in page.live.text("识别模型 Detector")
    assert "ModuleNotFoundError" in caplog.text  # the details went to the log


def test_backends_say_what_to_do():
    text = system.backend_text("tensorrt", "tensorrt is not installed (ModuleNotFoundError: No module named 'tensorrt')")
    assert "未安装 TensorRT（仅 Jetson 可用）" in text and "ModuleNotFoundError" not in text
    assert "sudo make install" in system.backend_text("onnxruntime", "onnxruntime is not installed (ImportError: x)")
    assert "GPU" in system.backend_text("tensorrt", "no usable CUDA device (RuntimeError: cudaErrorNoDevice)")
    assert "可用" in system.backend_text("onnxruntime", None)


def test_fps_is_measured_from_the_frames_processed():
    now = [100.0]
    rate = system.FrameRate(clock=lambda: now[0])
    assert rate.sample(0) is None
    now[0] += 2.0
    assert rate.sample(30) == 15.0
    now[0] += 0.1
    assert rate.sample(31) == 15.0  # too soon to measure again: the last figure stands
    now[0] += 1.9
    assert rate.sample(59) == 14.5
    assert rate.sample(None) is None


def test_device_buttons_are_large(screen_of):
    screen = screen_of()
    page = screen.show_page("system")
    for button in (page.pin_button, page.restart_button, page.reboot_button, page.power_button):
        assert button.minimumHeight() >= 60
    gate = screen.show_page("gate")
    for button in list(gate.reason_buttons.values()) + [gate.open_button]:
        assert button.minimumHeight() >= 60
    screen.show()
    hint = screen.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 600


# ---- remote open and the test pulse --------------------------------------------------------------------


def test_remote_open_pulses_the_apps_gate_and_records_the_reason(qtbot, monkeypatch, screen_of, store):
    lent = SimulatedGate()
    page = screen_of(gate=lambda: lent).show_page("gate")
    asked = answer(monkeypatch, gate_page, True)
    page.choose_reason("delivery", "  3 号楼  ")
    assert page.remote_open() is True
    qtbot.waitUntil(lambda: page.last_open is not None, timeout=5000)
    assert page.last_open == "ok" and [ms for _, ms in lent.pulses] == [800]
    assert "快递: 3 号楼" in asked[0][0] and asked[0][1].startswith("开门")
    rows = operator_rows(store)
    assert len(rows) == 1 and rows[0]["reason"] == "remote_open: 快递: 3 号楼" and rows[0]["gate_opened"] == 1
    assert page.chosen_reason() == "" and page.reason_text.text() == ""  # the next opening asks again

    page.choose_reason("visitor")
    page.remote_open()
    qtbot.waitUntil(lambda: len(lent.pulses) == 2, timeout=5000)
    assert reasons(store)[-1] == "remote_open: 访客"


@pytest.mark.parametrize("preset, text, words", [("", "", "请选择或填写开门原因"), ("other", "", "请填写原因"),
                                                 ("visitor", "x" * 65, "太长"), ("visitor", "a\x07b", "控制字符")])
def test_remote_open_needs_a_reason(qtbot, monkeypatch, screen_of, store, preset, text, words):
    lent = SimulatedGate()
    page = screen_of(gate=lambda: lent).show_page("gate")
    asked = answer(monkeypatch, gate_page, True)
    if preset:
        page.choose_reason(preset, text)
    assert page.remote_open() is False
    assert words in page.open_note.text() and asked == [] and lent.pulses == [] and reasons(store) == []


def test_remote_open_cancelled_or_unrecorded_opens_nothing(qtbot, monkeypatch, screen_of, store):
    lent = SimulatedGate()
    page = screen_of(gate=lambda: lent).show_page("gate")
    page.choose_reason("other", "消防检查")
    answer(monkeypatch, gate_page, False)
    assert page.remote_open() is False and lent.pulses == [] and reasons(store) == []

    answer(monkeypatch, gate_page, True)
    refusing = screen_of(gate=lambda: lent, record=lambda decision: None).show_page("gate")  # the log cannot take it
    refusing.choose_reason("maintenance")
    assert refusing.remote_open() is False and refusing.last_open == "refused"
    qtbot.wait(100)
    assert lent.pulses == [] and "未开门" in refusing.open_note.text()


def test_a_failed_remote_open_is_recorded_and_explained(qtbot, monkeypatch, screen_of, store):
    lent = SimulatedGate(fail=True)
    page = screen_of(gate=lambda: lent).show_page("gate")
    answer(monkeypatch, gate_page, True)
    page.choose_reason("maintenance", "电梯")
    page.remote_open()
    qtbot.waitUntil(lambda: page.last_open is not None, timeout=5000)
    assert page.last_open == "error" and "继电器" in page.open_note.text() and "relay did not open" not in page.open_note.text()
    assert reasons(store) == ["remote_open: 维修: 电梯", "remote_open_failed: 维修: 电梯"]


def test_the_test_pulse_is_recorded(qtbot, screen_of, store):
    lent = SimulatedGate()
    page = screen_of(gate=lent).show_page("gate")
    page.test_pulse()
    qtbot.waitUntil(lambda: page.last_test is not None, timeout=5000)
    assert page.last_test == "ok" and reasons(store) == ["gate_test: 800 ms"]
    assert operator_rows(store)[0]["gate_opened"] == 1


# ---- the access log: Log page and dabai-kiosk log -----------------------------------------------------------


def test_the_log_page_shows_and_filters_the_operator_rows(qtbot, monkeypatch, screen_of, store):
    from kiosk.core.events import Decision

    store.access_log.append(Decision("granted", "ok", mask="with_mask", resident_id=1, resident_name="张三",
                                     gate_opened=True), ts=time.time() - 60)
    screen = screen_of(gate=lambda: SimulatedGate())
    gate = screen.show_page("gate")
    answer(monkeypatch, gate_page, True)
    gate.choose_reason("delivery", "顺丰")
    gate.remote_open()
    qtbot.waitUntil(lambda: gate.last_open is not None, timeout=5000)
    screen.ctx.record("pin_changed")

    page = screen.show_page("log")
    qtbot.waitUntil(lambda: page.filter_button.isEnabled() and len(page.rows) == 3, timeout=5000)
    page.outcome.setCurrentIndex(page.outcome.findData("operator"))
    assert page.outcome.currentText() == "运维操作 operator"
    page.refresh()
    qtbot.waitUntil(lambda: page.filter_button.isEnabled() and len(page.rows) == 2, timeout=5000)
    cells = [[page.table.item(row, col).text() for col in range(page.table.columnCount())] for row in range(2)]
    assert cells[0][1] == "运维操作 operator" and cells[0][2] == "修改运维密码 pin_changed"
    assert cells[1][2] == "远程开门：快递: 顺丰 remote_open" and cells[1][6] == "开 open"


def test_dabai_kiosk_log_lists_exports_and_verifies_operator_rows(home, store, capsys):
    from kiosk.cli import main
    from kiosk.core.events import Decision

    store.access_log.append(Decision("operator", "remote_open: 快递", gate_opened=True))
    store.access_log.append(Decision("operator", "reboot"))
    store.close()
    assert main(["log", "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("operator") == 2 and "remote_open: 快递" in out and "gate=open" in out
    assert main(["log", "export", "--csv"]) == 0
    assert "operator,remote_open: 快递" in capsys.readouterr().out
    assert main(["log", "verify"]) == 0
    assert "ok: 2 record(s)" in capsys.readouterr().out


# ---- the app: the operator screen's record, status and restart ---------------------------------------------


class Camera:
    """A live camera giving grey frames at about 50 fps."""

    live = True
    fps = 50.0
    name = "test-camera"

    def read(self):
        time.sleep(0.02)
        return np.full((240, 320, 3), 120, np.uint8)

    def close(self):
        pass


def test_the_app_records_operator_actions_and_restarts_on_request(qtbot, home):
    from kiosk.config import Config, replace, save_config
    from kiosk.runtime.assemble import assemble
    from kiosk.store.passes import create_keys
    from kiosk.ui.app import KioskController, threads_alive
    from kiosk.ui.bridge import Metrics, UiBridge
    from kiosk.ui.window import KioskWindow
    from kiosk.vision.sources import FrameSource

    config = replace(replace(Config(), "speech", tts="none"), "listen", enabled=False)
    home.root.mkdir(parents=True, exist_ok=True)
    save_config(config, home.config)
    create_keys(home.private_key, home.public_key)
    bridge = UiBridge()
    window = KioskWindow(bridge, config.policy, metrics=Metrics())
    qtbot.addWidget(window)
    window.resize(1024, 600)
    window.show()
    parts = assemble(home, config)
    camera = type("LiveCamera", (Camera, FrameSource), {})
    controller = KioskController(home, parts, bridge, window, window.metrics, listen=False,
                                 open_camera=lambda cam: camera())
    window.closed.connect(controller.stop)
    controller.start()
    try:
        controller._show_operator()
        screen = window.operator
        assert isinstance(screen, OperatorScreen) and power.restart_available()
        assert screen.ctx.record("remote_open", "访客", gate_opened=True)  # into the running kiosk's own log
        rows = parts.store.access_log.list(outcome="operator")
        assert rows[0]["reason"] == "remote_open: 访客" and rows[0]["gate_opened"] == 1

        page = screen.show_page("system")  # the camera view is covered: the FPS comes from the frames processed
        qtbot.wait(700)
        page.show_live()
        qtbot.wait(700)
        page.show_live()
        assert float(page.live.text("帧率 FPS")) > 5

        assert power.request_restart().ok
        qtbot.waitUntil(lambda: controller.stopped, timeout=10000)
        assert controller.restart_requested and window.operator is None
        assert threads_alive() == [] and not controller.gate.is_open
        qtbot.waitUntil(lambda: not power.restart_available(), timeout=3000)  # the screen is gone with its handler
    finally:
        window.close()
