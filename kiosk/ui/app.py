"""The kiosk app: the Qt window wired to the running kiosk (``dabai-kiosk run``) or to the bundled
demo scenarios (``dabai-kiosk run --demo``).

Threads stay at the edges: capture, vision, microphone, the decider, the speaker and the gate's
timer run as before and reach the window only through :class:`kiosk.ui.bridge.UiBridge` signals.
The GUI thread renders, opens the operator screen and applies a saved configuration; anything
slow that a new configuration needs (reopening the gate, the camera, the voice, the models) runs
in a short-lived ``reconfigure`` thread.
"""

from __future__ import annotations

import json
import logging
import signal
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication

from kiosk.config import Config, ConfigError, Home, load_config
from kiosk.gate.startup import close_on_exit, open_gate_first
from kiosk.runtime import exitcodes, power
from kiosk.runtime.assemble import Parts, SilentSpeaker, assemble, build_detector, build_qr_reader, build_speaker
from kiosk.runtime.kiosk import Kiosk, timeline_echo
from kiosk.runtime.watchdog import Watchdog, heartbeat_of, stop_supervision, supervise
from kiosk.ui.bridge import Metrics, UiBridge
from kiosk.ui.fonts import NO_FONT, use_cjk_font
from kiosk.ui.theme import apply_theme
from kiosk.ui.window import HOLD_MS, KioskWindow
from kiosk.vision.capture import Capture
from kiosk.vision.sources import FrameSource, open_source
from kiosk.vision.worker import VisionWorker

log = logging.getLogger(__name__)

SECTION_NAMES = {  # what the operator reads after saving
    "policy": "通行规则", "camera": "摄像头", "vision": "识别模型", "gate": "闸机", "speech": "语音",
    "listen": "语音输入", "community": "小区信息",
}
LIVE_SECTIONS = ("policy", "community")  # read on the next event: nothing to restart
THREAD_NAMES = ("decider", "ticker", "capture", "vision", "mic-loop", "speaker", "reconfigure", "demo", "mic-start")


class ObservedGate:
    """The gate driver as the kiosk sees it: tells the window whether each pulse really opened the
    relay, and lets a new driver be swapped in (``inner``) without touching the Kiosk."""

    def __init__(self, inner: Any, report: Callable[[str, str], None]) -> None:
        self.inner = inner
        self.report = report

    @property
    def name(self) -> str:
        return str(getattr(self.inner, "name", "gate"))

    def pulse(self, ms: int) -> bool:
        ok = bool(self.inner.pulse(ms))
        self.report("gate", "ok" if ok else "the {} relay did not open".format(self.name))
        return ok

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, item: str) -> Any:  # pulses, is_open … of the real driver
        return getattr(self.inner, item)


def mic_status(text: str) -> str:
    """A microphone-loop message as a banner status: "ok", "off" (switched off in the config) or what is wrong."""
    if text.startswith("listening on"):
        return "ok"
    if text.startswith("voice input off"):
        return "off"
    return text


def report_problems(problems: List[str], report: Callable[[str, str], None]) -> None:
    """``assemble``'s problems ("vision: …", "gate: …", "speech: …") as banners."""
    parts = {"vision": "model", "gate": "gate", "speech": "voice"}
    for problem in problems:
        head, _, detail = problem.partition(": ")
        report(parts.get(head, head), detail or problem)


def _median(values: Iterable[float]) -> Optional[float]:
    recent = list(values)[-200:]  # a list or a deque
    return round(statistics.median(recent), 1) if recent else None


def _join(thread: Optional[Any], timeout: float = 5.0) -> None:
    if thread is not None and thread is not threading.current_thread() and thread.is_alive():
        thread.join(timeout)


class _Controller:
    """What both the live kiosk and the demo do with the window: the operator screen and the status."""

    def __init__(self, home: Home, config: Config, bridge: UiBridge, window: KioskWindow, metrics: Metrics) -> None:
        self.home = home
        self.config = config
        self.bridge = bridge
        self.window = window
        self.metrics = metrics
        self.stopped = False
        self.restarting: List[str] = []
        self.gate: Any = None  # the ObservedGate the kiosk drives (set by each controller)
        self._pin_dialog: Optional[Any] = None

    # ---- the operator screen (GUI thread) ----------------------------------------------------

    def open_operator(self) -> None:
        if self.window.operator is not None or self._pin_dialog is not None:
            return
        try:
            from kiosk.ui.operator import OperatorScreen, PinDialog, PinStore  # noqa: F401
        except ImportError as exc:  # the detail is for the log and doctor; the screen says what it means
            log.error("operator screen not available: %s", exc)
            self.bridge.notice.emit("运维界面无法打开：请运行 dabai-kiosk doctor 查看原因")
            return
        dialog = PinDialog(PinStore.in_home(self.home), self.window)
        self._pin_dialog = dialog
        dialog.accepted.connect(self._show_operator)
        dialog.finished.connect(self._pin_closed)
        dialog.open()  # not exec_(): the window keeps following the kiosk meanwhile

    def _pin_closed(self, *_: Any) -> None:
        dialog, self._pin_dialog = self._pin_dialog, None
        if dialog is not None:
            dialog.deleteLater()
        # Give the window back the focus the dialog had: keys, taps on fields and the on-screen keyboard follow it.
        self.window.activateWindow()
        self.window.raise_()

    def _show_operator(self) -> None:
        from kiosk.ui.operator import OperatorScreen

        parts = getattr(self, "parts", None)  # the live kiosk's or the demo's: its access log takes operator actions

        def record(decision: Any) -> Any:
            """An operator's action into the running kiosk's access log, on disk or not at all (None)."""
            if parts is None or self.stopped:
                return None
            return parts.store.access_log.append(decision, durable=True)

        def status() -> Dict[str, Any]:
            # Frames the vision step handed to the window: the System page's FPS. The window's own FPS counts
            # painted frames, and none are painted while the operator screen covers the camera view.
            return dict(self.status(), frames_processed=self.bridge.offered)

        # The operator's gate test pulses the app's own relay and the camera preview shows the app's frames:
        # neither device can be opened twice.
        screen = OperatorScreen(self.home, status, gate=lambda: self.gate, frames=self.bridge.latest_image,
                                record=record, demo=self.demo_home)
        screen.config_saved.connect(self.config_saved)
        screen.closed.connect(self.window.hide_operator)
        restart = lambda: self.request_restart()  # noqa: E731 - this screen's own: forgotten when the screen is gone
        power.set_restart_handler(restart)  # the System page's 重启程序
        screen.destroyed.connect(lambda *_: power.clear_restart_handler(restart))
        self.window.show_operator(screen)

    demo_home = False  # the demo runs on a throwaway data home: the operator screen says so

    restart_requested = False  # set by request_restart: run_app starts the kiosk again once it has stopped

    def request_restart(self) -> None:
        """The operator's 重启程序: leave the operator screen and close the window; run_app then stops the kiosk as at
        any exit (relay closed, access log flushed) and starts it again (:func:`kiosk.runtime.power.restart_after_exit`)."""
        self.restart_requested = True
        close_screen = getattr(self.window.operator, "close_screen", None)
        if close_screen is not None:
            close_screen()
        QTimer.singleShot(0, self.window.close)

    def config_saved(self, config: Config) -> None:
        changed = self.apply_config(config)
        self.bridge.notice.emit(describe_changes(changed))

    def apply_config(self, config: Config) -> List[str]:
        raise NotImplementedError

    def status(self) -> Dict[str, Any]:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


def changed_sections(old: Config, new: Config) -> List[str]:
    return [name for name in SECTION_NAMES if getattr(old, name) != getattr(new, name)]


def describe_changes(changed: List[str]) -> str:
    if not changed:
        return "设置已保存：没有改动"
    live = [SECTION_NAMES[s] for s in changed if s in LIVE_SECTIONS]
    restart = [SECTION_NAMES[s] for s in changed if s not in LIVE_SECTIONS]
    parts = []
    if live:
        parts.append("立即生效：" + "、".join(live))
    if restart:
        parts.append("正在重新打开：" + "、".join(restart) + "（无需重启程序）")
    return "设置已保存 · " + "；".join(parts)


class KioskController(_Controller):
    """The live kiosk behind the window: configured camera, microphone, voice and gate."""

    def __init__(
        self,
        home: Home,
        parts: Parts,
        bridge: UiBridge,
        window: KioskWindow,
        metrics: Metrics,
        listen: bool = True,
        open_camera: Optional[Callable[[Any], FrameSource]] = None,
        echo: Optional[Callable[[str], None]] = None,
    ) -> None:
        super().__init__(home, parts.config, bridge, window, metrics)
        self.parts = parts
        self.listen = listen
        self.open_camera = open_camera  # tests: camera config → FrameSource
        self.echo = echo
        self.gate = ObservedGate(parts.gate, bridge.report)
        self.kiosk = Kiosk(self.config, self.gate, parts.speaker, parts.store.access_log)
        self.kiosk.listeners.append(bridge.on_action)
        if echo is not None:  # the timeline on stdout as the headless kiosk prints it (the journal under systemd)
            self.kiosk.note_listeners.append(timeline_echo(echo))
        self.capture: Optional[Capture] = None
        self.worker: Optional[VisionWorker] = None
        self.mic: Optional[Any] = None
        self.mic_text = "off"
        self._lock = threading.Lock()  # one reconfiguration at a time
        self._threads: List[threading.Thread] = []
        self.watchdog = QTimer()
        self.watchdog.timeout.connect(self._watch)
        self.heartbeat = time.monotonic()  # the GUI thread's last turn (stamped by _watch, once a second)
        self.supervisor: Optional[Watchdog] = None  # systemd's watchdog, fed while every thread is alive
        self.stop_link: Optional[Callable[[], None]] = None  # the link to the community's office, when in a fleet
        bridge.config_arrived.connect(self.config_saved)

    # ---- running -----------------------------------------------------------------------------

    def start(self, listen_now: bool = True) -> None:
        """Starts the decider, the camera and vision, and the microphone loop (loading its models here
        when ``listen_now``, else in a background thread)."""
        report_problems(self.parts.problems, self.bridge.report)
        self.kiosk.start()
        self._start_fleet()
        self._start_vision()
        if self.listen:
            if listen_now:
                self._start_mic()
            else:
                self._background(self._start_mic, "mic-start")
        self.watchdog.start(1000)
        # READY=1 for systemd now that the gate is closed, the parts are built and the threads run. Capture and
        # vision are not judged while a new configuration reopens them (they are replaced).
        self.supervisor = supervise({
            "decider": lambda: self.kiosk.heartbeat,
            "capture": heartbeat_of(lambda: None if self.restarting else self.capture),
            "vision": heartbeat_of(lambda: None if self.restarting else self.worker),
            "window": lambda: self.heartbeat,
        }, "running (camera {}, gate {}, window)".format(self.config.camera.source, self.gate.name))

    def stop(self) -> None:
        """Stops every thread this kiosk started and leaves the gate closed. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        stop_supervision(self.supervisor)
        self.watchdog.stop()
        if self.stop_link is not None:
            self.stop_link()
        for thread in list(self._threads):
            _join(thread, 10)
        with self._lock:
            self._stop_mic()
            self._stop_vision()
            self.kiosk.stop()
            _join(getattr(self.kiosk, "_ticker", None), 2)
            stop_speaker = getattr(self.kiosk.speaker, "stop", None)
            if stop_speaker is not None:
                stop_speaker()
            self.gate.close()
            self.saved = self.parts.store.close()  # False: access-log records only on stderr (the journal)

    def _start_fleet(self) -> None:
        """In a community of gates: stream the log to the office and take its lists; the office's policy is applied
        as the operator's own would be (in the GUI thread)."""
        from kiosk.fleet.broker import FleetError
        from kiosk.fleet.link import start_link

        def applied(name: str, version: int) -> None:
            if name == "policy":
                try:
                    self.bridge.config_arrived.emit(load_config(self.home.config))
                except ConfigError as exc:
                    log.error("the office's policy was saved but cannot be read back: %s", exc)

        try:
            self.stop_link = start_link(self.home, self.config.fleet, self.parts.store.access_log,
                                        self.parts.store.db, applied)
        except FleetError as exc:
            log.error("fleet: %s", exc)

    def _background(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _open_source(self, cam: Any) -> FrameSource:
        if self.open_camera is not None:
            return self.open_camera(cam)
        return open_source(cam.source, cam.width, cam.height, cam.fps, cam.loop, flip=cam.flip)

    def _start_vision(self) -> None:
        cam = self.config.camera
        self.capture = Capture(lambda: self._open_source(cam), on_status=self._camera_status)
        self.worker = VisionWorker(self.capture, self.parts.detector, self.parts.qr_reader, self.parts.check_pass,
                                   self.kiosk.post, on_result=self.bridge.offer_frame,
                                   on_status=lambda status: self.bridge.report("model", status))
        self.capture.start()
        self.worker.start()

    def _camera_status(self, status: str) -> None:
        self.bridge.report("camera", "ok" if status == "ok" else status)

    def _stop_vision(self) -> None:
        capture, worker = self.capture, self.worker
        if worker is not None:
            worker.stop()
        if capture is not None:
            capture.stop()
        _join(worker)
        _join(capture)

    def _start_mic(self) -> None:
        from kiosk.runtime.headless import start_listening

        def say(text: str) -> None:
            self.mic_text = text
            self.bridge.report("microphone", mic_status(text))

        with self._lock:
            if self.stopped:
                return
            self.mic = start_listening(self.config, self.home, self.kiosk.post, self.kiosk.speaker, say)

    def _stop_mic(self) -> None:
        mic, self.mic = self.mic, None
        if mic is not None:
            mic.stop()

    def _watch(self) -> None:
        """Once a second in the GUI thread: a file source that played to its end ends the run (as headless).
        (The kiosk's and the vision worker's histories bound themselves.)"""
        self.heartbeat = time.monotonic()
        capture, worker = self.capture, self.worker
        if capture is not None and capture.ended and not self.stopped and not self.restarting:
            if worker is None or not worker.is_alive():
                self.kiosk.drain(2.0)
                self.window.close()
                return

    # ---- a new configuration from the operator screen ----------------------------------------

    def apply_config(self, config: Config) -> List[str]:
        """Policy and community apply at once; the gate, camera, models, voice and microphone are
        reopened in the background. Returns the changed sections."""
        changed = changed_sections(self.config, config)
        self.config = config
        self.parts.config = config
        self.kiosk.config = config  # the decider reads policy and pulse length on its next event
        self.window.set_policy(config.policy)
        self.window.set_community(config.community.name)
        restart = [s for s in changed if s not in LIVE_SECTIONS]
        if restart:
            self.restarting = restart
            self._background(lambda: self._restart(restart, config), "reconfigure")
        return changed

    def _restart(self, sections: List[str], config: Config) -> None:
        from kiosk.gate.drivers import GateUnavailable, SimulatedGate, open_gate_driver

        failed: List[str] = []  # sections that could not be opened (their banners say why)
        with self._lock:
            if self.stopped:
                return
            try:
                if "gate" in sections:
                    try:
                        driver = open_gate_driver(config.gate)
                        self.bridge.report("gate", "ok")
                    except GateUnavailable as exc:
                        self.bridge.report("gate", str(exc))
                        failed.append("gate")
                        driver = SimulatedGate(fail=True)  # the gate stays closed
                    old, self.gate.inner = self.gate.inner, driver
                    old.close()
                if "speech" in sections:
                    old_speaker = self.kiosk.speaker
                    try:
                        speaker = build_speaker(config, self.home)
                        self.bridge.report("voice", "ok")
                    except Exception as exc:
                        self.bridge.report("voice", str(exc))
                        failed.append("speech")
                        speaker = SilentSpeaker(str(exc))
                    self.kiosk.speaker = self.parts.speaker = speaker
                    stop = getattr(old_speaker, "stop", None)
                    if stop is not None:
                        stop()
                if "vision" in sections:
                    try:
                        self.parts.detector = build_detector(config, self.home)
                        self.bridge.report("model", "ok")
                    except Exception as exc:
                        self.parts.detector = None
                        self.bridge.report("model", str(exc))
                        failed.append("vision")
                    self.parts.qr_reader = build_qr_reader(config)
                if "camera" in sections or "vision" in sections:
                    self._stop_vision()
                    self._start_vision()
                if self.listen and ("listen" in sections or "speech" in sections):
                    self._stop_mic()
            finally:
                self.restarting = []
        if self.listen and ("listen" in sections or "speech" in sections):
            self._start_mic()
        problems = [SECTION_NAMES[s] for s in failed]
        done = "已重新打开：" + "、".join(SECTION_NAMES[s] for s in sections) + "（无需重启程序）"
        self.bridge.notice.emit(done + ("；仍有问题：" + "、".join(problems) if problems else ""))

    # ---- for the operator's system page -------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        cam = self.capture.status if self.capture is not None else "stopped"
        worker = self.worker
        vision = self.config.vision
        detector = "{} + {}".format(vision.face_model, vision.mask_model) if self.parts.detector is not None else \
            "unavailable: " + self.window.problems.get("model", "not loaded")
        return {
            "fps": self.metrics.fps(),
            "vision_ms_p50": _median(list(worker.step_ms)) if worker is not None else None,
            "frame_to_display_ms_p50": self.metrics.latency_p50(),
            "longest_ui_stall_ms": round(self.metrics.longest_stall_ms, 1),
            "detector": detector if "model" not in self.window.problems or self.parts.detector is None
            else "{} ({})".format(detector, self.window.problems["model"]),
            "backend": vision.backend,
            "camera": "{} ({})".format(cam, self.config.camera.source),
            "microphone": self.mic_text,
            "gate": self.gate.name if "gate" not in self.window.problems else "fault: " + self.window.problems["gate"],
            "voice": getattr(getattr(getattr(self.kiosk.speaker, "cache", None), "voice", None), "name", None)
            or "silent: {}".format(getattr(self.kiosk.speaker, "reason", "")),
        }


# ---- the bundled demo in the window ---------------------------------------------------------------


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    models_from: Optional[Path] = None
    only: Optional[List[str]] = None
    loop: bool = False


class DemoController(_Controller):
    """Plays kiosk/demo's scenarios through the real pipeline, paced in real time, into the window.

    The scenarios, their data home and the resident's voice are those of ``kiosk.demo.run``; the
    frames come in real time and, as from a live camera, only the newest is processed (the headless
    demo takes every frame as fast as it can). The outcomes are the same unless the machine is too
    slow to see a few frames per second."""

    demo_home = True

    def __init__(self, options: DemoOptions, bridge: UiBridge, window: KioskWindow, metrics: Metrics,
                 echo: Callable[[str], None] = print) -> None:
        from kiosk.demo.run import prepare_home, scenarios

        home = Home((options.out / "home").resolve())
        options.out.mkdir(parents=True, exist_ok=True)
        tokens = prepare_home(home, options.models_from, options.out / "speech")
        self.parts = assemble(home, sink=_loudspeaker())
        super().__init__(home, self.parts.config, bridge, window, metrics)
        self.options = options
        self.echo = echo
        self.scenarios = [s for s in scenarios(tokens) if not options.only or s.name in options.only]
        self.gate = ObservedGate(self.parts.gate, bridge.report)
        # --loop plays for as long as an exhibition lasts: keep the newest rounds only
        self.outcomes: "deque[Any]" = deque(maxlen=max(1, len(self.scenarios)) * 20)
        self.vision_ms: "deque[float]" = deque(maxlen=20000)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo", daemon=True)
        self.window.set_community(self.config.community.name)

    def start(self) -> None:
        report_problems(self.parts.problems, self.bridge.report)
        self._thread.start()

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self._halt.set()
        _join(self._thread, 15)
        stop_speaker = getattr(self.parts.speaker, "stop", None)
        if stop_speaker is not None:
            stop_speaker()
        self.gate.close()
        self.parts.store.close()

    def apply_config(self, config: Config) -> List[str]:
        changed = changed_sections(self.config, config)
        self.config = self.parts.config = config  # the next scenario plays with it
        self.window.set_policy(config.policy)
        return changed

    def status(self) -> Dict[str, Any]:
        return {
            "fps": self.metrics.fps(), "vision_ms_p50": _median(self.vision_ms),
            "frame_to_display_ms_p50": self.metrics.latency_p50(), "detector": self.config.vision.face_model,
            "backend": self.config.vision.backend, "camera": "demo scenarios", "microphone": "demo: scripted speech",
            "gate": self.gate.name, "voice": str(self.config.speech.tts),
        }

    # ---- the demo thread ---------------------------------------------------------------------

    def _run(self) -> None:
        from kiosk.demo.run import Ears

        ears = None
        try:
            ears = Ears(self.parts, self.options.out / "resident_voice")
        except Exception as exc:  # no voice, VAD or recognizer: the sentences arrive as text
            self.echo("problem: no voice input for the demo ({}); sentences arrive as text".format(exc))
        try:
            while not self._halt.is_set():
                for i, scenario in enumerate(self.scenarios):
                    if self._halt.is_set():
                        break
                    self.bridge.caption.emit("演示 {}/{} · {}".format(i + 1, len(self.scenarios), scenario.title))
                    self.outcomes.append(self._play(scenario, ears))
                if not self.options.loop:
                    break
        except Exception as exc:  # report it in the window and on stderr; the app then ends
            log.exception("demo failed")
            self.echo("demo failed: {}".format(exc))
        self.bridge.caption.emit("")
        self.bridge.finished.emit(self.report())

    def _play(self, scenario: Any, ears: Any) -> Any:
        from kiosk.demo.run import format_timeline, play

        outcome = play(self.parts, scenario, keep_frames=False, ears=ears, paced=True, on_frame=self.bridge.offer_frame,
                       listeners=[self.bridge.on_action], halt=self._halt, gate=self.gate)
        self.vision_ms.extend(outcome.vision_ms)
        self.echo(format_timeline(outcome))
        return outcome

    def report(self) -> Dict[str, Any]:
        from kiosk.bench import timing_summary

        return {
            "scenarios": [{"name": o.scenario.name, "outcome": o.outcome, "reason": o.reason, "passed": o.passed}
                          for o in self.outcomes],
            "all_passed": bool(self.outcomes) and all(o.passed for o in self.outcomes),
            "decision_latency_ms": timing_summary([ms for o in self.outcomes for ms in o.latencies_ms]),
            "vision_step_ms": timing_summary(self.vision_ms),
        }


def _loudspeaker() -> Any:
    """The default loudspeaker when this machine has one (the demo is heard), else None (wav files)."""
    from kiosk.speech.audio_out import AudioDeviceUnavailable, SounddeviceSink

    try:
        return SounddeviceSink()
    except (AudioDeviceUnavailable, OSError):
        return None


# ---- the application ------------------------------------------------------------------------------


def run_app(
    home: Home,
    fullscreen: bool = True,
    size: Optional[Tuple[int, int]] = None,
    duration: float = 0.0,
    demo: Optional[DemoOptions] = None,
    measure: bool = False,
    hold_ms: int = HOLD_MS,
    echo: Callable[[str], None] = print,
) -> int:
    """Runs the window until it is closed (or ``duration`` seconds; the demo: until it has played).
    With ``measure``, prints the frame-to-display latency and the longest UI stall as JSON at the end."""
    opened = None if demo is not None else open_gate_first(home)  # first, before anything can fail: relay driven closed
    if opened is not None:
        close_on_exit(opened.driver)  # and closed again at exit, whatever ends the app
        for note in opened.notes:
            echo("warning: " + note)
    quiet_qt_messages()
    app = QApplication.instance() or QApplication(["dabai-kiosk"])
    apply_theme(app)  # one fixed, high-contrast look whatever the desktop's theme (kiosk.ui.theme)
    family = use_cjk_font(app)
    if family is None:
        echo("warning: " + NO_FONT)
    bridge = UiBridge()
    metrics = Metrics()
    try:
        config = Config() if demo is not None else load_config(home.config)
    except BaseException:
        if opened is not None:
            opened.driver.close()
        raise
    window = KioskWindow(bridge, config.policy, config.community.name, metrics, demo=demo is not None, hold_ms=hold_ms)
    if family is None:
        window.set_status("font", "fonts-noto-cjk")
    controller: _Controller
    if demo is not None:
        controller = DemoController(demo, bridge, window, metrics, echo)
    else:
        assert opened is not None
        try:
            parts = assemble(home, config, gate=opened.driver)
        except BaseException:
            opened.driver.close()
            raise
        parts.problems[:0] = opened.problems
        for problem in parts.problems:
            echo("problem: {}".format(problem))
        controller = KioskController(home, parts, bridge, window, metrics, echo=echo)
        window.setCursor(_blank_cursor())  # a touch kiosk shows no mouse pointer
        echo("kiosk running (camera {}, gate {}); close the window or Ctrl-C to stop".format(
            config.camera.source, parts.gate.name))
    window.set_policy(controller.config.policy)
    window.operator_requested.connect(controller.open_operator)
    window.closed.connect(metrics.stop)  # joining the threads at the end is not a stall anyone sees
    window.closed.connect(controller.stop)
    result: Dict[str, Any] = {}

    def finished(report: Dict[str, Any]) -> None:
        result.update(report)
        QTimer.singleShot(500 if measure else 2500, window.close)

    bridge.finished.connect(finished)
    # Started before the window shows: loading the microphone's models holds Python's GIL for a moment,
    # which would otherwise be a visible stall.
    controller.start()
    if fullscreen:
        window.showFullScreen()
    else:
        window.resize(*(size or (1280, 720)))
        window.show()
    metrics.start()
    if duration > 0:
        QTimer.singleShot(int(duration * 1000), window.close)
    # Python runs signal handlers only between bytecodes: a slow timer lets SIGTERM (systemd) and Ctrl-C in.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: QTimer.singleShot(0, window.close))
    pulse = QTimer()
    pulse.timeout.connect(lambda: None)
    pulse.start(250)
    app.exec_()
    power.set_restart_handler(None)
    controller.stop()
    metrics.stop()
    if measure:
        summary = dict(metrics.summary(), window="{}x{}".format(window.width(), window.height()),
                       platform=app.platformName(), frames_dropped_before_display=bridge.dropped,
                       frames_offered=bridge.offered)
        summary.update({k: v for k, v in result.items() if k != "scenarios"})
        if "scenarios" in result:
            summary["scenarios_as_expected"] = "{}/{}".format(
                sum(1 for s in result["scenarios"] if s["passed"]), len(result["scenarios"]))
        echo(json.dumps(summary, ensure_ascii=False, indent=2))
    if demo is not None:
        code = 0 if result.get("all_passed") else 1
    else:
        code = exitcodes.OK if getattr(controller, "saved", True) else exitcodes.UNSAVED
    if controller.restart_requested:  # the operator's 重启程序: stopped cleanly above, now start again
        echo("restarting at the operator's request")
        return power.restart_after_exit(code)
    return code


def _blank_cursor() -> Any:
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QCursor

    return QCursor(Qt.BlankCursor)


def quiet_qt_messages() -> None:
    """Drops Qt's offscreen-platform chatter ("This plugin does not support propagateSizeHints()")."""
    from PyQt5.QtCore import qInstallMessageHandler

    def handler(kind: Any, context: Any, message: str) -> None:
        if "propagateSizeHints" in message or "XDG_RUNTIME_DIR" in message:
            return
        log.warning("qt: %s", message)

    qInstallMessageHandler(handler)


def threads_alive() -> List[str]:
    """Names of the kiosk's own threads still running (tests: none after the window closes)."""
    return sorted(t.name for t in threading.enumerate() if t.name in THREAD_NAMES and t.is_alive())
