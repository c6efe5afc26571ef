"""The resident-facing Qt window: it follows the decision core, never waits on the edges, shows
banners for missing devices and recovers with the camera, and stops every thread when closed.

Offscreen (QT_QPA_PLATFORM=offscreen, set by conftest and the Makefile); no camera, microphone or GPU.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace as dc_replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PyQt5.QtWidgets")
pytest.importorskip("pytestqt")

from conftest import SHARED  # noqa: E402
from PyQt5.QtCore import Qt  # noqa: E402
from PyQt5.QtGui import QColor  # noqa: E402
from PyQt5.QtWidgets import QApplication, QBoxLayout  # noqa: E402

from kiosk.config import Config, PolicyConfig, save_config  # noqa: E402
from kiosk.config import replace as config_replace  # noqa: E402
from kiosk.core.events import FaceObservation, FacesSeen, Mask, PassCheck, PassPresented, Tick  # noqa: E402
from kiosk.core.machine import State, step  # noqa: E402
from kiosk.core.prompts import PROMPTS  # noqa: E402
from kiosk.gate.drivers import SimulatedGate  # noqa: E402
from kiosk.runtime.kiosk import Kiosk  # noqa: E402
from kiosk.store.accesslog import AccessLog  # noqa: E402
from kiosk.store.db import Database  # noqa: E402
from kiosk.ui.bridge import Metrics, UiBridge  # noqa: E402
from kiosk.ui.screen import FAILED, OFF, OK, WAITING, follow, idle_screen, parse_size, steps_of  # noqa: E402
from kiosk.vision.capture import Frame  # noqa: E402
from kiosk.vision.sources import CameraUnavailable, FrameSource  # noqa: E402
from kiosk.vision.worker import FrameResult  # noqa: E402

FACE = FaceObservation(1, Mask.WITH, 0.9, (100, 100, 260, 260))
BARE = FaceObservation(1, Mask.WITHOUT, 0.9, (100, 100, 260, 260))
VALID = PassCheck(True, "ok", 1, "张三", 5)
EXPIRED = PassCheck(False, "expired", 1, "张三", 6)


class Voice:
    def __init__(self):
        self.said = []

    def say(self, key, text):
        self.said.append(text)


def fold(events, policy=PolicyConfig()):
    """Events through the real core; the screen after each action."""
    state, screen, screens = State(), idle_screen(policy), []
    for i, event in enumerate(events):
        state, actions = step(state, event, 0.1 * i, policy)
        for action in actions:
            screen = follow(screen, action, state, policy)
            screens.append(screen)
    return screen, screens


# ---- the screen model (no Qt) ----------------------------------------------------------------------


def test_grant_shows_the_greeting_with_the_name_and_every_step_passed():
    screen, screens = fold([FacesSeen((FACE,)), FacesSeen((FACE,)), FacesSeen((FACE,)), PassPresented(VALID)])
    assert screens[0].page == "session" and screens[0].prompt == PROMPTS["welcome"]
    assert screen.page == "granted" and screen.name == "张三" and screen.gate_opened
    assert dict(screen.steps) == {"mask": OK, "pass": OK, "request": OFF}


def test_denials_show_the_reason_and_which_step_failed():
    screen, _ = fold([FacesSeen((BARE,))] * 3)
    assert (screen.page, screen.reason, screen.prompt) == ("denied", "no_mask", "请您佩戴口罩")
    assert dict(screen.steps)["mask"] == FAILED
    screen, _ = fold([FacesSeen((FACE,)), PassPresented(EXPIRED)])
    assert (screen.page, screen.prompt) == ("denied", "二维码已过期")
    assert dict(screen.steps)["pass"] == FAILED and dict(screen.steps)["mask"] == WAITING


def test_checking_keeps_the_prompt_and_marks_the_pass():
    screen, _ = fold([FacesSeen((FACE,)), PassPresented(VALID)])
    assert screen.page == "session" and screen.prompt == PROMPTS["welcome"]
    assert dict(screen.steps) == {"mask": WAITING, "pass": OK, "request": OFF}


def test_steps_follow_the_policy():
    policy = PolicyConfig(mask_required=False, request_required=True)
    assert dict(steps_of(None, policy)) == {"mask": OFF, "pass": WAITING, "request": WAITING}
    lenient = PolicyConfig(incorrect_counts_as_unmasked=False)
    state = State(mask=Mask.INCORRECT)
    assert dict(steps_of(state, lenient))["mask"] == OK
    assert dict(steps_of(state, PolicyConfig()))["mask"] == FAILED


def test_back_to_idle_shows_the_attract_screen():
    policy = PolicyConfig()
    screen, _ = fold([FacesSeen((BARE,))] * 3 + [Tick()] * 40, policy)
    assert screen.page == "attract" and screen.prompt == ""


def test_parse_size():
    assert parse_size("1024x600") == (1024, 600)
    with pytest.raises(ValueError):
        parse_size("10x10")


# ---- the window --------------------------------------------------------------------------------


def _window(qtbot, size=(1280, 720), **kwargs):
    from kiosk.ui.window import KioskWindow

    bridge = UiBridge()
    window = KioskWindow(bridge, kwargs.pop("policy", PolicyConfig()), metrics=Metrics(), **kwargs)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window, bridge


def _kiosk(tmp_path, bridge, voice=None):
    log = AccessLog(Database(tmp_path / "db.sqlite"), tmp_path / "spool.jsonl")
    kiosk = Kiosk(Config(), SimulatedGate(), voice or Voice(), log, media_clock=True)
    kiosk.listeners.append(bridge.on_action)
    return kiosk


def _panel_colour(window) -> QColor:
    image = window.panel.grab().toImage()
    return QColor(image.pixel(image.width() - 3, image.height() // 2))


def test_window_follows_the_decider_thread_to_granted_and_back_to_idle(qtbot, tmp_path):
    from kiosk.ui.window import GREEN, NAVY

    window, bridge = _window(qtbot)
    kiosk = _kiosk(tmp_path, bridge)
    kiosk.start()  # actions arrive from the decider thread, through queued signals
    try:
        assert window.page_name() == "attract" and window.attract_title.text() == "请说：你好大白"
        for i in range(3):
            kiosk.post(FacesSeen((FACE,)), 0.1 * i)
        kiosk.post(PassPresented(VALID), 0.35)
        qtbot.waitUntil(lambda: window.page_name() == "granted", timeout=3000)
        assert window.result_title.text() == "您好，张三"
        assert window.result_gate.text() == "闸机已开启"
        assert _panel_colour(window) == GREEN
        assert dict(window.step_bar.steps) == {"mask": OK, "pass": OK, "request": OFF}
        assert window.step_bar.isVisible()
        for i in range(40):  # result hold, cooldown: back to the attract screen
            kiosk.post(Tick(), 0.5 + 0.1 * i)
        qtbot.waitUntil(lambda: window.page_name() == "attract", timeout=3000)
        assert _panel_colour(window) == NAVY and not window.step_bar.isVisible()
    finally:
        kiosk.stop()


def test_window_shows_a_denial_in_red_with_its_reason(qtbot, tmp_path):
    from kiosk.ui.window import RED

    window, bridge = _window(qtbot, size=(1024, 600))
    kiosk = _kiosk(tmp_path, bridge)
    kiosk.start()
    try:
        kiosk.post(FacesSeen((FACE,)), 0.0)
        qtbot.waitUntil(lambda: window.page_name() == "session", timeout=3000)
        assert window.session_prompt.text().replace("\n", "") == PROMPTS["welcome"]
        kiosk.post(PassPresented(EXPIRED), 0.2)
        qtbot.waitUntil(lambda: window.page_name() == "denied", timeout=3000)
        assert window.result_text.text() == "二维码已过期" and window.result_gate.text() == "闸机保持关闭"
        assert _panel_colour(window) == RED
        assert dict(window.step_bar.steps)["pass"] == FAILED
    finally:
        kiosk.stop()


def _result(index, faces=(), image=None):
    image = np.full((480, 640, 3), 90, np.uint8) if image is None else image
    return FrameResult(Frame(image, index, index / 10.0, time.perf_counter()), tuple(faces), [], [], 5.0)


def test_faces_are_boxed_in_their_class_colour_and_latency_is_measured(qtbot):
    from kiosk.ui.window import CLASS_COLOURS

    window, bridge = _window(qtbot, size=(1280, 720))
    face = FaceObservation(3, Mask.WITHOUT, 0.88, (200, 150, 360, 330))
    sender = threading.Thread(target=bridge.offer_frame, args=(_result(0, [face]),))
    sender.start()
    sender.join()
    qtbot.waitUntil(lambda: window.metrics.frames_shown == 1, timeout=3000)
    view = window.video
    shown = view.shown
    assert shown is not None and shown.faces[0][0] is face
    image = view.grab().toImage()
    x0 = (view.width() - shown.image.width()) // 2
    y0 = (view.height() - shown.image.height()) // 2
    x1, y1, x2, y2 = shown.faces[0][1]
    edge = QColor(image.pixel(x0 + x1, y0 + (y1 + y2) // 2))  # the left edge of the box
    assert edge == CLASS_COLOURS[Mask.WITHOUT]
    assert list(window.metrics.latencies_ms)[0] >= 0


def test_stale_frames_are_dropped_not_queued(qtbot):
    window, bridge = _window(qtbot)
    signals = []
    bridge.frame_ready.connect(lambda: signals.append(1))

    def burst():
        for i in range(30):
            bridge.offer_frame(_result(i))

    sender = threading.Thread(target=burst)
    sender.start()
    sender.join()  # the GUI thread was busy (here: waiting) the whole time
    qtbot.waitUntil(lambda: window.video.shown is not None, timeout=3000)
    QApplication.processEvents()
    assert window.video.shown.index == 29
    assert len(signals) == 1 and bridge.dropped == 29
    assert window.metrics.frames_shown == 1


def test_banners_for_missing_devices_come_and_go(qtbot):
    from kiosk.ui.app import mic_status, report_problems

    window, bridge = _window(qtbot)
    report_problems(["vision: face model yunet_n_dynamic is not installed", "gate: no GPIO"], bridge.report)
    bridge.report("microphone", mic_status("no voice input: no recognizer model"))
    qtbot.waitUntil(lambda: window.banner_text("gate") is not None, timeout=2000)
    assert "识别模型不可用" in window.banner_text("model")
    assert "yunet_n_dynamic" not in window.banner_text("model")  # the detail is for the operator and the log
    assert "yunet_n_dynamic" in window.problems["model"]
    assert "麦克风不可用" in window.banner_text("microphone")
    # masks cannot be checked: the resident is not asked for a QR code or a mask, but told what to do
    assert window.attract_title.text() == "暂时无法自助通行" and "联系物业" in window.attract_how.text()
    assert not window.attract_pass.isVisibleTo(window) and not window.attract_mask.isVisibleTo(window)
    bridge.report("model", "ok")
    qtbot.waitUntil(lambda: window.attract_title.text() == "请出示通行二维码", timeout=2000)  # it cannot hear
    assert mic_status("listening on default (sherpa-kws; silero)") == "ok"
    bridge.report("microphone", "ok")
    qtbot.waitUntil(lambda: window.banner_text("microphone") is None, timeout=2000)
    assert window.attract_title.text() == "请说：你好大白"
    bridge.report("microphone", mic_status("voice input off (listen.enabled = false)"))
    qtbot.waitUntil(lambda: window.attract_title.text() == "请出示通行二维码", timeout=2000)
    assert window.banner_text("microphone") is None  # switched off on purpose: no banner
    bridge.report("camera", "unavailable: /dev/video0 is not there")
    qtbot.waitUntil(lambda: window.attract_title.text() == "暂时无法自助通行", timeout=2000)
    assert "/dev/video0" not in window.banner_text("camera")
    bridge.report("microphone", mic_status("no voice input: no recognizer model"))
    qtbot.waitUntil(lambda: window.banner_text("microphone") is not None, timeout=2000)
    assert "二维码" not in window.banner_text("microphone")  # no camera: nobody is asked to show a QR code
    bridge.report("camera", "ok")
    qtbot.waitUntil(lambda: "二维码" in (window.banner_text("microphone") or ""), timeout=2000)


def test_a_model_that_fell_back_to_onnxruntime_is_not_a_residents_problem(qtbot):
    window, bridge = _window(qtbot)
    bridge.report("model", "degraded: face detector runs on onnxruntime (tensorrt failed to load it: AttributeError)")
    qtbot.waitUntil(lambda: "model" in window.problems, timeout=2000)
    assert window.banner_text("model") is None  # masks are still checked: no red headline for the resident
    assert window.problems["model"].startswith("degraded")  # the operator's system page shows it
    bridge.report("model", "unavailable: no backend can run face_detector.onnx")
    qtbot.waitUntil(lambda: window.banner_text("model") is not None, timeout=2000)
    assert "识别模型不可用" in window.banner_text("model")


def test_layout_follows_the_screen_orientation_and_fits_the_longest_sentences(qtbot):
    window, _ = _window(qtbot)
    longest = max((text for key, text in PROMPTS.items() if "{" not in key), key=len)
    for size in ((1920, 1080), (1080, 1920), (1024, 600)):
        window.resize(*size)
        window.screen = dc_replace(window.screen, page="denied", prompt=longest, steps=steps_of(None, PolicyConfig()))
        window.render_screen()
        for _ in range(3):
            QApplication.processEvents()
        portrait = size[1] > size[0]
        assert window.body.direction() == (QBoxLayout.TopToBottom if portrait else QBoxLayout.LeftToRight)
        for widget in (window.video, window.panel, window.result_text, window.result_title, window.step_bar):
            top_left = widget.mapTo(window, widget.rect().topLeft())
            bottom_right = widget.mapTo(window, widget.rect().bottomRight())
            assert window.rect().contains(top_left) and window.rect().contains(bottom_right), (size, widget)
        label = window.result_text
        assert label.heightForWidth(label.width()) <= label.height(), (size, "clipped")
        if portrait:
            assert window.video.height() <= size[0] * 3 // 4 + 1
        else:
            assert window.panel.width() >= int(size[0] * 0.36)


def test_the_hidden_gesture_and_keys_ask_for_the_operator_screen(qtbot):
    window, _ = _window(qtbot, hold_ms=150)
    asked = []
    window.operator_requested.connect(lambda: asked.append(1))
    qtbot.mousePress(window.hotspot, Qt.LeftButton)
    qtbot.mouseRelease(window.hotspot, Qt.LeftButton, delay=20)  # a tap is not a long press
    qtbot.wait(250)
    assert asked == []
    with qtbot.waitSignal(window.operator_requested, timeout=2000):
        qtbot.mousePress(window.hotspot, Qt.LeftButton)
    qtbot.mouseRelease(window.hotspot, Qt.LeftButton)
    assert window.hotspot.geometry().topLeft().x() == 0 and window.hotspot.geometry().topLeft().y() == 0
    window.activateWindow()
    qtbot.waitActive(window)
    with qtbot.waitSignal(window.operator_requested, timeout=2000):
        qtbot.keyClick(window, Qt.Key_F12)
    with qtbot.waitSignal(window.operator_requested, timeout=2000):
        qtbot.keyClick(window, Qt.Key_O, Qt.ControlModifier | Qt.ShiftModifier)


def test_a_ui_stall_is_measured(qtbot):
    metrics = Metrics()
    metrics.start()
    qtbot.wait(50)
    from PyQt5.QtCore import QTimer

    QTimer.singleShot(0, lambda: time.sleep(0.2))  # a slot that blocks the GUI thread
    qtbot.wait(100)
    metrics.stop()
    assert metrics.longest_stall_ms >= 150 and metrics.stalls_over_50ms >= 1


def test_a_cjk_font_is_chosen_explicitly(qtbot):
    from kiosk.ui.fonts import choose_family, use_cjk_font

    assert choose_family(["DejaVu Sans", "WenQuanYi Zen Hei", "Noto Sans CJK SC"]) == "Noto Sans CJK SC"
    assert choose_family(["DejaVu Sans", "Some CJK Font"]) == "Some CJK Font"
    assert choose_family(["DejaVu Sans"]) is None
    from kiosk.fonts import cjk_font_path

    if cjk_font_path() is None:
        pytest.skip("no CJK font installed (fonts-noto-cjk)")
    family = use_cjk_font(QApplication.instance())
    assert family is not None and QApplication.instance().font().family() == family


# ---- the running kiosk behind the window ---------------------------------------------------------


class FakeCamera(FrameSource):
    """A live camera that gives ``frames`` frames, then fails as an unplugged one does (its read raises: a read
    that only times out is not a lost camera until ``Capture.lost_after_s``); opening fails while ``broken`` says so."""

    live = True
    fps = 50.0
    name = "test-camera"

    def __init__(self, frames=10_000):
        self.left = frames

    def read(self):
        time.sleep(0.02)
        if self.left <= 0:
            raise CameraUnavailable("{} was unplugged".format(self.name))
        self.left -= 1
        return np.full((240, 320, 3), 120, np.uint8)


def _home(home, **sections):
    from kiosk.store.passes import create_keys

    config = config_replace(Config(), "speech", tts="none")
    config = config_replace(config, "listen", enabled=False)
    for section, values in sections.items():
        config = config_replace(config, section, **values)
    home.root.mkdir(parents=True, exist_ok=True)
    save_config(config, home.config)
    create_keys(home.private_key, home.public_key)
    return config


def _controller(qtbot, home, config, open_camera, size=(1024, 600)):
    from kiosk.runtime.assemble import assemble
    from kiosk.ui.app import KioskController

    window, bridge = _window(qtbot, size=size, policy=config.policy)
    parts = assemble(home, config)
    controller = KioskController(home, parts, bridge, window, window.metrics, listen=config.listen.enabled,
                                 open_camera=open_camera)
    window.closed.connect(controller.stop)
    controller.start()
    return controller, window, bridge


def test_closing_the_window_stops_every_thread(qtbot, home):
    from kiosk.ui.app import threads_alive

    # the microphone start-up thread runs too (and finds no model); the face model is one not installed here
    config = _home(home, listen={"enabled": True}, vision={"face_model": "yunet_n_dynamic"})
    controller, window, _ = _controller(qtbot, home, config, lambda cam: FakeCamera())
    qtbot.waitUntil(lambda: window.metrics.frames_shown >= 3, timeout=5000)
    assert {"decider", "ticker", "capture", "vision"} <= set(threads_alive())
    assert window.banner_text("model") is not None  # no face model installed in this home
    qtbot.waitUntil(lambda: window.banner_text("microphone") is not None, timeout=5000)
    window.close()
    assert controller.stopped
    assert threads_alive() == []
    assert not controller.gate.is_open


def test_an_unplugged_camera_shows_a_banner_then_recovers_without_a_restart(qtbot, home):
    config = _home(home)
    opened = []

    def open_camera(cam):
        opened.append(time.monotonic())
        if len(opened) == 2:  # still unplugged at the first retry
            raise CameraUnavailable("/dev/video0 is not there")
        return FakeCamera(frames=8 if len(opened) == 1 else 10_000)

    controller, window, _ = _controller(qtbot, home, config, open_camera)
    try:
        qtbot.waitUntil(lambda: window.metrics.frames_shown >= 2, timeout=5000)
        qtbot.waitUntil(lambda: window.banner_text("camera") is not None, timeout=5000)
        assert "摄像头不可用" in window.banner_text("camera") and not window.video.camera_ok
        shown_while_unplugged = window.metrics.frames_shown
        qtbot.waitUntil(lambda: window.banner_text("camera") is None, timeout=8000)
        qtbot.waitUntil(lambda: window.metrics.frames_shown > shown_while_unplugged + 3, timeout=5000)
        assert window.video.camera_ok and len(opened) == 3
        assert controller.capture.is_alive()  # the same capture thread reopened the camera
    finally:
        window.close()


def test_a_saved_config_applies_without_a_restart(qtbot, home):
    from kiosk.ui.app import describe_changes

    config = _home(home)
    controller, window, _ = _controller(qtbot, home, config, lambda cam: FakeCamera())
    try:
        qtbot.waitUntil(lambda: window.metrics.frames_shown >= 2, timeout=5000)
        first_capture = controller.capture
        stricter = config_replace(config, "policy", request_required=True)
        assert controller.apply_config(stricter) == ["policy"]
        assert controller.kiosk.config.policy.request_required and controller.capture is first_capture
        assert dict(window.screen.steps)["request"] == WAITING
        moved = config_replace(stricter, "camera", source="/dev/video1")
        moved = config_replace(moved, "gate", pulse_ms=1200)
        assert controller.apply_config(moved) == ["camera", "gate"]
        qtbot.waitUntil(lambda: controller.capture is not first_capture and not controller.restarting, timeout=8000)
        shown = window.metrics.frames_shown
        qtbot.waitUntil(lambda: window.metrics.frames_shown > shown + 2, timeout=5000)
        assert not first_capture.is_alive()
        assert controller.kiosk.config.gate.pulse_ms == 1200
        text = describe_changes(["policy", "camera"])
        assert "立即生效：通行规则" in text and "正在重新打开：摄像头" in text
        qtbot.waitUntil(lambda: "已重新打开：摄像头、闸机" in (window.banner_text("notice") or ""), timeout=3000)
        status = controller.status()
        assert status["camera"].startswith("ok") and status["fps"] > 0 and status["frame_to_display_ms_p50"] is not None
    finally:
        window.close()


def test_the_gate_fault_is_shown_on_the_grant(qtbot, tmp_path):
    from kiosk.ui.app import ObservedGate

    window, bridge = _window(qtbot)
    log = AccessLog(Database(tmp_path / "db.sqlite"), tmp_path / "spool.jsonl")
    gate = ObservedGate(SimulatedGate(fail=True), bridge.report)
    kiosk = Kiosk(Config(), gate, Voice(), log, media_clock=True)
    kiosk.listeners.append(bridge.on_action)
    for i in range(3):
        kiosk.handle(FacesSeen((FACE,)), 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    qtbot.waitUntil(lambda: window.page_name() == "granted", timeout=2000)
    assert window.banner_text("gate") is not None and window.result_gate.text() == "闸机故障，请联系物业"
    gate.close()


# ---- commands ----------------------------------------------------------------------------------


def test_no_display_or_no_pyqt5_falls_back_to_headless(monkeypatch, capsys, home):
    import sys

    from kiosk import cli
    from kiosk.ui import display_missing, qt_missing

    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert display_missing() is not None
    monkeypatch.setitem(sys.modules, "PyQt5.QtWidgets", None)
    assert "pip install 'dabai-kiosk[ui]'" in qt_missing()
    monkeypatch.setattr("kiosk.runtime.headless.run_headless", lambda home, duration: 0)
    assert cli.main(["run", "--duration", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "no window" in err and "running headless" in err


def test_screenshots_render_each_state_at_its_size(qtbot, tmp_path):
    from kiosk.ui.screenshots import render_kiosk
    from kiosk.ui.window import GREEN, RED

    files = render_kiosk(tmp_path, sizes=[(1024, 600)])
    states = ("idle", "checking", "granted", "denied", "unavailable")
    assert [f.name for f in files] == ["kiosk-{}-1024x600.png".format(s) for s in states]
    from PyQt5.QtGui import QImage

    images = {f.name.split("-")[1]: QImage(str(f)) for f in files}
    assert all((i.width(), i.height()) == (1024, 600) for i in images.values())
    assert QColor(images["granted"].pixel(1020, 300)) == GREEN
    assert QColor(images["denied"].pixel(1020, 300)) == RED


@pytest.mark.skipif(not (SHARED / "models").is_dir() and not os.environ.get("DABAI_MODELS_FROM"),
                    reason="the demo needs the face model (../shared/models)")
def test_the_demo_plays_in_the_window_and_measures(qtbot, tmp_path):
    from kiosk.ui.app import DemoController, DemoOptions, threads_alive

    window, bridge = _window(qtbot, size=(1024, 600), demo=True)
    window.metrics.start()
    models = Path(os.environ.get("DABAI_MODELS_FROM", str(SHARED / "models")))
    lines = []
    controller = DemoController(DemoOptions(tmp_path / "demo", models, ["no_mask"]), bridge, window, window.metrics,
                                echo=lines.append)
    reports = []
    bridge.finished.connect(reports.append)
    pages = []
    bridge.action.connect(lambda action, state: pages.append(window.page_name()))
    window.closed.connect(controller.stop)
    controller.start()
    qtbot.waitUntil(lambda: bool(reports), timeout=60000)
    window.close()
    assert reports[0]["all_passed"] and "denied" in pages
    summary = window.metrics.summary()
    assert summary["frames_shown"] > 20 and summary["frame_to_display_ms"]["p50"] > 0
    assert any("no_mask" in line for line in lines)
    assert threads_alive() == []


def test_the_operator_screen_opens_after_the_pin_and_its_saved_config_applies(qtbot, home):
    pytest.importorskip("kiosk.ui.operator.screen")
    from kiosk.ui.operator import OperatorScreen, PinDialog

    config = _home(home)
    controller, window, _ = _controller(qtbot, home, config, lambda cam: FakeCamera())
    window.operator_requested.connect(controller.open_operator)
    try:
        window.operator_requested.emit()  # the long press / F12
        qtbot.waitUntil(lambda: controller._pin_dialog is not None, timeout=2000)
        dialog = controller._pin_dialog
        assert isinstance(dialog, PinDialog) and window.operator is None  # nothing without the PIN
        dialog.accept()
        qtbot.waitUntil(lambda: isinstance(window.operator, OperatorScreen), timeout=3000)
        assert window.root.currentWidget() is window.operator and window.hotspot.isHidden()
        window.operator.config_saved.emit(config_replace(config, "policy", mask_required=False))
        qtbot.waitUntil(lambda: window.banner_text("notice") is not None, timeout=2000)
        assert "立即生效：通行规则" in window.banner_text("notice")
        assert controller.kiosk.config.policy.mask_required is False
        window.operator.closed.emit()
        qtbot.waitUntil(lambda: window.operator is None, timeout=2000)
        assert window.root.currentWidget() is window.kiosk_page and not window.hotspot.isHidden()
    finally:
        window.close()


def test_a_long_press_shows_its_progress_and_a_notice_does_not_move_the_screen(qtbot):
    window, _ = _window(qtbot, hold_ms=400)
    qtbot.mousePress(window.hotspot, Qt.LeftButton)
    qtbot.wait(200)
    assert 0.2 < window.hotspot.progress < 1.0  # a ring fills while the corner is held
    ring = window.hotspot.grab().toImage()
    assert any(ring.pixelColor(x, y).lightness() > 200 for x in range(ring.width()) for y in range(ring.height()))
    qtbot.mouseRelease(window.hotspot, Qt.LeftButton)
    assert window.hotspot.progress == 0.0
    before = window.kiosk_page.geometry()
    window.show_notice("设置已保存")
    qtbot.wait(50)
    assert window.banner_text("notice") and window.kiosk_page.geometry() == before
    window._hide_notice()
    assert window.kiosk_page.geometry() == before


def test_the_operator_keys_work_whatever_has_the_focus(qtbot):
    """After the PIN dialog was cancelled the window may not get the focus back; the keys still work."""
    from PyQt5.QtWidgets import QShortcut

    window, _ = _window(qtbot)
    keys = {s.key().toString(): s.context() for s in window.findChildren(QShortcut)}
    assert keys["F12"] == Qt.ApplicationShortcut and keys["Ctrl+Shift+O"] == Qt.ApplicationShortcut


def test_the_offices_policy_is_in_force_at_the_next_event_and_the_link_stops_with_the_kiosk(qtbot, home, monkeypatch):
    """In a fleet the window's kiosk starts its link to the office; a policy the link applied (in the network thread)
    reaches the decider through the GUI thread, as the operator's own would."""
    import threading

    import kiosk.fleet.link as link

    started, stopped = [], []

    def fake_start_link(home_, config, access_log, db, on_applied=None):
        started.append(on_applied)
        return lambda: stopped.append(True)

    monkeypatch.setattr(link, "start_link", fake_start_link)
    config = _home(home)
    controller, window, bridge = _controller(qtbot, home, config, lambda cam: FakeCamera())
    try:
        assert len(started) == 1 and not controller.kiosk.config.policy.request_required
        save_config(config_replace(config, "policy", request_required=True), home.config)  # what the link wrote
        threading.Thread(target=started[0], args=("policy", 2)).start()
        qtbot.waitUntil(lambda: controller.kiosk.config.policy.request_required, timeout=5000)
        assert controller.config.policy.request_required
    finally:
        window.close()
    assert stopped == [True]
