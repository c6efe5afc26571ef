"""System page: 设备管理 (change the operator PIN, restart the kiosk program, reboot, power off), 设备信息, the
app's live figures (``status()``), CPU / GPU load, temperatures and memory read from /proc and /sys (Jetson's GPU
load from ``/sys/devices/gpu.0/load``), and the models and backends in use.

Everything on it is for the operator: each figure has a Chinese label (English second), and a problem says
what to do; the technical detail (exception texts, config keys, commands) goes to the Python log (the journal
under systemd). A figure this machine does not offer says "unavailable". Every device action asks first and
is written into the access log (:meth:`Context.record`)."""

from __future__ import annotations

import glob
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QDialog, QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from kiosk.runtime import power
from kiosk.runtime.deviceinfo import device_info, format_uptime
from kiosk.ui.operator.pin import ChangePinDialog
from kiosk.ui.operator.pinstore import PinStore
from kiosk.ui.operator.widgets import Note, Page, confirm, heading, hint, run_in_background, scrolling

log = logging.getLogger(__name__)

UNAVAILABLE = "不可用 unavailable"
REFRESH_MS = 2000
BUTTON_HEIGHT = 64  # the device buttons: large enough for a gloved finger on the 7-inch panel
GPU_LOAD_FILES = (  # per mille; the first that exists wins
    "sys/devices/gpu.0/load",
    "sys/devices/platform/gpu.0/load",
    "sys/devices/platform/bus@0/*.gpu/load",
    "sys/devices/platform/*.gpu/load",
    "sys/devices/platform/bus@0/*.ga10b/load",
)
LIVE = (  # status() key, label (Chinese, then English), unit
    ("fps", "帧率 FPS", ""),
    ("vision_ms_p50", "识别耗时 Vision time (median)", "ms"),
    ("frame_to_display_ms_p50", "画面延迟 Camera → screen (median)", "ms"),
    ("longest_ui_stall_ms", "界面最长卡顿 Longest screen freeze", "ms"),
    ("detector", "识别模型 Detector", ""),
    ("backend", "推理后端 Backend", ""),
    ("camera", "摄像头 Camera", ""),
    ("microphone", "麦克风 Microphone", ""),
    ("gate", "闸机 Gate", ""),
    ("voice", "语音 Voice", ""),
)
FRAMES_KEY = "frames_processed"  # a counter the app adds for the operator screen: the FPS is measured from it
HIDDEN = {FRAMES_KEY}
BACKEND_NAMES = {"auto": "自动 auto (TensorRT → ONNX Runtime)", "tensorrt": "TensorRT", "onnxruntime": "ONNX Runtime"}
GATE_NAMES = {"sim": "模拟 simulated", "gpio": "GPIO 继电器 relay", "serial": "USB 串口继电器 serial relay",
              "modbus": "Modbus 继电器 relay"}


CpuTimes = Tuple[int, int]  # idle, total (jiffies)


def read_cpu_times(root: Path = Path("/")) -> Optional[CpuTimes]:
    try:
        fields = (root / "proc" / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return idle, sum(values[:8])  # guest time is already counted in user


def cpu_percent(before: Optional[CpuTimes], after: Optional[CpuTimes]) -> Optional[float]:
    if before is None or after is None or after[1] <= before[1]:
        return None
    busy = (after[1] - before[1]) - (after[0] - before[0])
    return 100.0 * busy / (after[1] - before[1])


def read_temperatures(root: Path = Path("/")) -> List[Tuple[str, float]]:
    """(zone type, °C) of every thermal zone that reads."""
    out = []
    for zone in sorted(glob.glob(str(root / "sys" / "class" / "thermal" / "thermal_zone*"))):
        try:
            kind = Path(zone, "type").read_text().strip() or os.path.basename(zone)
            milli = int(Path(zone, "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        if -40000 < milli < 150000:  # some zones report nonsense when a sensor is off
            out.append((kind, milli / 1000.0))
    return out


def read_gpu_load(root: Path = Path("/")) -> Optional[float]:
    """The Jetson GPU's load in percent, or None (no such file: not a Jetson, or another kernel)."""
    for pattern in GPU_LOAD_FILES:
        for path in sorted(glob.glob(str(root / pattern))):
            try:
                return int(Path(path).read_text().strip()) / 10.0
            except (OSError, ValueError):
                continue
    return None


def read_memory(root: Path = Path("/")) -> Optional[Tuple[float, float]]:
    """(used MB, total MB)."""
    try:
        info = dict(line.split(":", 1) for line in (root / "proc" / "meminfo").read_text().splitlines() if ":" in line)
        total = int(info["MemTotal"].split()[0]) / 1024.0
        available = int(info["MemAvailable"].split()[0]) / 1024.0
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return total - available, total


def snapshot(before: Optional[CpuTimes], root: Path = Path("/")) -> Dict[str, Any]:
    """Load figures now; ``cpu`` needs the times of the previous snapshot."""
    times = read_cpu_times(root)
    return {"cpu_times": times, "cpu": cpu_percent(before, times), "temperatures": read_temperatures(root),
            "gpu": read_gpu_load(root), "memory": read_memory(root)}


# ---- saying it for the operator ---------------------------------------------------------------------------

_logged: Set[Tuple[str, str]] = set()


def _detail(what: str, detail: str) -> None:
    """A technical detail for the Python log, once per text (the page refreshes every 2 s)."""
    if (what, detail) not in _logged:
        _logged.add((what, detail))
        log.warning("system page: %s: %s", what, detail)


def backend_text(name: str, why: Optional[str]) -> str:
    """One inference backend as the operator reads it: available, or what to do."""
    label = BACKEND_NAMES.get(name, name)
    if why is None:
        return "{} ✓ 可用 available".format(label)
    _detail("backend " + name, why)
    text = why.lower()
    if name == "tensorrt" and "not installed" in text:
        return "{} ✗ 未安装 TensorRT（仅 Jetson 可用）not installed (Jetson only)".format(label)
    if "not installed" in text:
        return "{} ✗ 未安装：请重新运行安装程序 sudo make install · not installed: run the installer".format(label)
    if "cuda python bindings" in text:
        return "{} ✗ 缺少 CUDA 组件：请重新运行安装程序 sudo make install · CUDA bindings missing".format(label)
    if "cuda device" in text:
        return "{} ✗ 没有可用的 GPU · no usable GPU".format(label)
    return "{} ✗ 无法使用（详情见日志）unusable (see the log)".format(label)


def models_in_use(config: Any, models_dir: str) -> Dict[str, str]:
    """What the config asks for, which inference backends can run here and which catalogue models are in."""
    from kiosk.inference import available_backends
    from kiosk.models.catalog import list_models

    backends = available_backends()
    installed = [m["name"] for m in list_models(models_dir) if m["installed"]]
    return {
        "人脸模型 Face model": config.vision.face_model,
        "口罩模型 Mask model": config.vision.mask_model or "默认 default (engines/mask_classifier.onnx)",
        "推理后端设置 Backend setting": BACKEND_NAMES.get(config.vision.backend, config.vision.backend),
        "可用后端 Backends here": "；".join(backend_text(name, why) for name, why in backends.items()),
        "已安装模型 Installed models": ", ".join(installed) or "无 none ({})".format(models_dir),
        "语音 Voice": "关闭 off" if config.speech.tts == "none" else config.speech.tts,
        "识别 Recognizer": config.listen.recognizer if config.listen.enabled else "关闭 off",
    }


def _split_source(text: str) -> Tuple[str, str]:
    """``"ok (0)"`` → ("ok", "0"): the app's camera status with its source in brackets at the end."""
    if text.endswith(")") and " (" in text:
        head, _, tail = text.rpartition(" (")
        return head, tail[:-1]
    return text, ""


def camera_text(value: str) -> str:
    state, source = _split_source(value)
    where = "（来源 source: {}）".format(source) if source else ""
    if state == "ok":
        return "正常 OK" + where
    if state in ("starting", "stopped"):
        return ("启动中 starting" if state == "starting" else "已停止 stopped") + where
    if state.startswith("demo"):
        return "演示画面 demo scenarios"
    _detail("camera", value)
    return "不可用：请检查摄像头连接和「设备」页的摄像头设置{}\nUnavailable: check the camera cable and the camera " \
           "settings on the Devices page".format(where)


def microphone_text(value: str) -> str:
    if value.startswith("listening on"):
        return "正常 OK"
    if value in ("off", "") or value.startswith("voice input off"):
        return "已关闭 off"
    if value.startswith("demo"):
        return "演示：脚本语音 demo: scripted speech"
    _detail("microphone", value)
    return "不可用：请检查麦克风和「设备」页的语音输入设置\nUnavailable: check the microphone and the voice input settings"


def gate_text(value: str) -> str:
    if value.startswith("fault") or "UNAVAILABLE" in value:
        _detail("gate", value)
        return "故障：请检查继电器接线和「闸机」页的设置\nFault: check the relay wiring and the settings on the Gate page"
    driver = value.split()[0] if value.split() else value
    return GATE_NAMES.get(driver, value)


def voice_text(value: str) -> str:
    if not value.startswith("silent"):
        return value
    reason = value.partition(":")[2].strip()
    if reason.endswith("= none") or not reason:
        return "已关闭 off"
    _detail("voice", value)
    return "无语音：请检查扬声器和「设备」页的语音设置\nNo voice: check the speaker and the voice settings"


def detector_text(value: str) -> str:
    if value.startswith("unavailable"):
        _detail("detector", value)
        return "未加载识别模型：请在「设备」页检查模型设置，或运行 dabai-kiosk doctor\nNo model loaded: check the " \
               "model settings on the Devices page"
    models, problem = _split_source(value)
    if problem and " + " in models:  # loaded, with a problem beside it (e.g. fell back from TensorRT)
        _detail("detector", problem)
        return "{}（有提示，详情见日志 with a note, see the log）".format(models)
    return value


TEXTS: Dict[str, Callable[[str], str]] = {"camera": camera_text, "microphone": microphone_text, "gate": gate_text,
                                          "voice": voice_text, "detector": detector_text,
                                          "backend": lambda v: BACKEND_NAMES.get(v, v)}


def format_live(key: str, value: Any, unit: str) -> str:
    """A ``status()`` value for the screen: numbers with their unit, states and problems in words."""
    if value is None or value == "":
        return UNAVAILABLE
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if isinstance(value, float):
        return "{:.1f}{}".format(value, " " + unit if unit else "")
    if isinstance(value, int):
        return "{}{}".format(value, " " + unit if unit else "")
    if isinstance(value, dict):
        return ", ".join("{}: {}".format(k, v) for k, v in value.items())
    text = str(value)
    return TEXTS[key](text) if key in TEXTS else text


def other_label(key: str) -> str:
    """A figure the page has no label for yet (a newer app): shown, in words rather than as a key."""
    return "其他 Other: {}".format(key.replace("_", " "))


def _is_cjk(word: str) -> bool:
    return any("\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" for c in word)


def _two_lines(label: str) -> str:
    """``中文 English`` (``CPU 负载 CPU load``) as a bold Chinese line and a grey English one; a label without
    Chinese (a product name) as one line."""
    words = label.split(" ")
    last = max((i for i, w in enumerate(words) if _is_cjk(w)), default=-1)
    zh, en = " ".join(words[:last + 1]), " ".join(words[last + 1:])
    if not zh or not en:
        return "<b>{}</b>".format(label)
    return "<b>{}</b><br><span style='color:#66707a;font-size:12px'>{}</span>".format(zh, en)


def device_rows(info: Dict[str, Any]) -> List[Tuple[str, str]]:
    """:func:`kiosk.runtime.deviceinfo.device_info` as (label, text) rows."""
    versions = info.get("versions") or {}

    def version(name: str, missing: str = "未安装 not installed") -> str:
        return str(versions.get(name) or missing)

    l4t = info.get("l4t")
    disk = info.get("disk")
    uptime = info.get("uptime")
    addresses = list(info.get("ipv4") or []) + list(info.get("ipv6") or [])
    qt = version("qt")
    if versions.get("pyqt"):
        qt += " (PyQt {})".format(versions["pyqt"])
    return [
        ("型号 Model", str(info.get("model") or UNAVAILABLE)),
        ("JetPack 版本 JetPack release", "JetPack {} (L4T {})".format(l4t[0] or "?", l4t[1]) if l4t
         else "非 Jetson not a Jetson"),
        ("操作系统 Operating system", str(info.get("os") or UNAVAILABLE)),
        ("程序版本 Kiosk version", version("kiosk", UNAVAILABLE)),
        ("Python", version("python", UNAVAILABLE)),
        ("ONNX Runtime", version("onnxruntime")),
        ("TensorRT", version("tensorrt", "未安装（仅 Jetson 可用）not installed (Jetson only)")),
        ("OpenCV", version("opencv")),
        ("Qt", qt),
        ("磁盘空间 Disk (free / total)", "{:.1f} / {:.1f} GB".format(*disk) if disk else UNAVAILABLE),
        ("运行时间 Up for", format_uptime(uptime) if uptime is not None else UNAVAILABLE),
        ("IP 地址 IP addresses", ", ".join(addresses) or "无网络 no network"),
        ("数据目录 Data folder", str(info.get("home") or UNAVAILABLE)),
    ]


class _Table(QWidget):
    """Label / value rows that can be refilled; a row is found by its label, or by the ``key`` it was set with."""

    def __init__(self) -> None:
        super().__init__()
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setColumnStretch(1, 1)
        self.grid.setColumnMinimumWidth(0, 260)
        self.values: Dict[str, QLabel] = {}

    def set(self, label: str, text: str, key: Optional[str] = None) -> None:
        key = key or label
        if key not in self.values:
            row = len(self.values)
            value = QLabel()
            value.setWordWrap(True)
            name = QLabel(_two_lines(label))
            name.setMinimumHeight(name.sizeHint().height())  # both lines, however the scroll area squeezes the rows
            self.grid.addWidget(name, row, 0)
            self.grid.addWidget(value, row, 1)
            self.values[key] = value
        self.values[key].setText(text)

    def text(self, key: str) -> str:
        return self.values[key].text() if key in self.values else ""

    def labels(self) -> List[str]:
        """Every label shown (tests: no raw keys)."""
        return [self.grid.itemAtPosition(row, 0).widget().text() for row in range(len(self.values))]


class FrameRate:
    """Frames per second from a counter sampled now and then (the app's frames processed): the kiosk's own FPS
    counts painted frames, and nothing is painted while the operator screen covers the camera view."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last: Optional[Tuple[float, int]] = None
        self.value: Optional[float] = None

    def sample(self, count: Any) -> Optional[float]:
        if not isinstance(count, int):
            return None
        now = self.clock()
        if self._last is not None and now - self._last[0] >= 0.5 and count >= self._last[1]:
            self.value = (count - self._last[1]) / (now - self._last[0])
        if self._last is None or now - self._last[0] >= 0.5 or count < self._last[1]:
            self._last = (now, count)
        return self.value


class SystemPage(Page):
    name = "system"
    title = "系统 System"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.live = _Table()
        self.load = _Table()
        self.models = _Table()
        self.device = _Table()
        self.rate = FrameRate()
        self.runner: Optional[power.Runner] = None  # how systemctl is run (tests: a recorder); None: for real
        self.last_power: Optional[power.PowerResult] = None
        self._cpu: Optional[CpuTimes] = None
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

        self.pin_button = self._device_button("修改密码\nChange PIN", self.change_pin)
        self.restart_button = self._device_button("重启程序\nRestart the kiosk", self.restart_app)
        self.reboot_button = self._device_button("重启设备\nReboot", self.reboot, danger=True)
        self.power_button = self._device_button("关机\nShut down", self.power_off, danger=True)
        self.power_note = Note()
        buttons = QGridLayout()
        buttons.setSpacing(10)
        for i, button in enumerate((self.pin_button, self.restart_button, self.reboot_button, self.power_button)):
            buttons.addWidget(button, i // 2, i % 2)

        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(heading("设备管理 Device"))
        column.addLayout(buttons)
        column.addWidget(self.power_note)
        column.addWidget(heading("运行状态 Live"))
        column.addWidget(self.live)
        column.addWidget(heading("负载与温度 Load and temperature"))
        column.addWidget(self.load)
        column.addWidget(heading("设备信息 Device information"))
        column.addWidget(self.device)
        column.addWidget(heading("模型与后端 Models and backends"))
        column.addWidget(self.models)
        column.addWidget(hint("每 {} 秒刷新 Refreshed every {} s".format(REFRESH_MS // 1000, REFRESH_MS // 1000)))
        column.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(scrolling(body))
        self.show_live()
        self.show_load({"cpu": None, "temperatures": [], "gpu": None, "memory": None})

    def _device_button(self, text: str, slot: Callable[[], None], danger: bool = False) -> QPushButton:
        button = QPushButton(text)
        button.setMinimumHeight(BUTTON_HEIGHT)
        button.setStyleSheet("font-size: 17px;")
        if danger:
            button.setProperty("danger", True)
        button.clicked.connect(lambda _=False: slot())
        return button

    def on_show(self) -> None:
        self.refresh()
        self.timer.start()
        config = self.ctx.config
        models_dir = str(self.ctx.home.models)
        home_root = self.ctx.home.root
        # One task, not two: both import heavy packages (onnxruntime, cv2, importlib.metadata), and two threads
        # importing them at once deadlocked now and then (the offscreen audit hung about one run in ten).
        readers = ((lambda: models_in_use(config, models_dir), self._models), (lambda: device_info(home_root), self._device_info))

        def read_all() -> List[Tuple[Any, Optional[BaseException]]]:
            results: List[Tuple[Any, Optional[BaseException]]] = []
            for read, _ in readers:
                try:
                    results.append((read(), None))
                except Exception as exc:  # each reader's own callback shows its failure
                    results.append((None, exc))
            return results

        def show_all(results: Optional[List[Tuple[Any, Optional[BaseException]]]], error: Optional[BaseException]) -> None:
            for (_, done), (result, failed) in zip(readers, results or [(None, error)] * len(readers)):
                done(result, failed)

        run_in_background(read_all, show_all)

    def on_hide(self) -> None:
        self.timer.stop()

    def refresh(self) -> None:
        self.show_live()
        before = self._cpu
        run_in_background(lambda: snapshot(before), self._loaded)

    # ---- live figures ------------------------------------------------------------------------------------

    def show_live(self) -> None:
        status = self.ctx.status()
        if FRAMES_KEY in status:
            fps = self.rate.sample(status[FRAMES_KEY])
            status["fps"] = round(fps, 1) if fps is not None else status.get("fps") or None
        for key, label, unit in LIVE:
            value = status.get(key)
            if key == "fps" and value is None and FRAMES_KEY in status:
                self.live.set(label, "测量中 measuring…")
                continue
            self.live.set(label, format_live(key, value, unit))
        known = {key for key, _, _ in LIVE} | HIDDEN
        for key in sorted(k for k in status if k not in known):
            self.live.set(other_label(key), format_live(key, status[key], ""), key=key)

    def _loaded(self, snap: Optional[Dict[str, Any]], error: Optional[BaseException]) -> None:
        if snap is None:
            if error is not None:
                _detail("load figures", repr(error))
            return
        self._cpu = snap["cpu_times"]
        self.show_load(snap)

    def show_load(self, snap: Dict[str, Any]) -> None:
        cpu = snap.get("cpu")
        self.load.set("CPU 负载 CPU load", "{:.0f} %".format(cpu) if cpu is not None else
                      ("测量中 measuring…" if snap.get("cpu_times") else UNAVAILABLE))
        gpu = snap.get("gpu")
        self.load.set("GPU 负载 GPU load", "{:.0f} %".format(gpu) if gpu is not None else UNAVAILABLE)
        temps = snap.get("temperatures") or []
        self.load.set("温度 Temperature", ", ".join("{} {:.1f} °C".format(k, t) for k, t in temps) or UNAVAILABLE)
        memory = snap.get("memory")
        self.load.set("内存 Memory", "{:.0f} / {:.0f} MB".format(*memory) if memory else UNAVAILABLE)

    def _models(self, found: Optional[Dict[str, str]], error: Optional[BaseException]) -> None:
        if error is not None:
            _detail("models", repr(error))
            self.models.set("模型 Models", "{}（详情见日志 see the log）".format(UNAVAILABLE))
            return
        for label, text in (found or {}).items():
            self.models.set(label, text)

    def _device_info(self, info: Optional[Dict[str, Any]], error: Optional[BaseException]) -> None:
        if error is not None or info is None:
            _detail("device information", repr(error))
            self.device.set("设备信息 Device information", "{}（详情见日志 see the log）".format(UNAVAILABLE))
            return
        for label, text in device_rows(info):
            self.device.set(label, text)

    # ---- device actions ------------------------------------------------------------------------------------

    def change_pin(self) -> bool:
        """修改密码: the current PIN, then the new one twice, on the keypad. True when it was changed."""
        dialog = ChangePinDialog(PinStore.in_home(self.ctx.home), self)
        try:
            changed = dialog.exec_() == QDialog.Accepted
        finally:
            dialog.deleteLater()
        if changed:
            self.ctx.record("pin_changed")
            self.power_note.ok("运维密码已修改，下次进入时使用新密码 The operator PIN was changed")
        return changed

    def restart_app(self) -> bool:
        """重启程序: the app stops cleanly (relay closed, log flushed) and starts again."""
        if not confirm(self, "重启闸机程序？\n程序会退出并自动重新启动，约需半分钟，期间闸机保持关闭。", "重启程序 Restart",
                       "The kiosk program quits and starts again by itself (about half a minute); the gate stays "
                       "closed meanwhile."):
            return False
        if not power.restart_available():  # no app listens (the screenshots, a bare screen): said, not recorded
            self._powered("restart_app", power.request_restart())
            return False
        self.ctx.record("restart_app")
        self._powered("restart_app", power.request_restart())
        return True

    def reboot(self) -> bool:
        """重启设备: ``systemctl reboot``; the kiosk stops as at any shutdown, then the device restarts."""
        if not confirm(self, "重启整台设备？\n约需 1–2 分钟，期间闸机保持关闭，无法通行。", "重启设备 Reboot",
                       "The whole device restarts (1–2 minutes); the gate stays closed meanwhile."):
            return False
        self._run_power("reboot", power.reboot)
        return True

    def power_off(self) -> bool:
        """关机: ``systemctl poweroff``; someone must press the power button (or restore power) to start it again."""
        if not confirm(self, "关闭整台设备？\n关机后闸机保持关闭，需要到现场按电源键才能重新开机。", "关机 Shut down",
                       "The device powers off; the gate stays closed until someone presses the power button on site."):
            return False
        self._run_power("power_off", power.power_off)
        return True

    def _run_power(self, action: str, command: Callable[[Optional[power.Runner]], power.PowerResult]) -> None:
        self.ctx.record(action)  # before the command: the device may be gone a moment later
        runner = self.runner
        self._set_buttons(False)
        self.power_note.busy("正在执行… Working…")
        run_in_background(lambda: command(runner), lambda result, error: self._power_done(action, result, error))

    def _power_done(self, action: str, result: Optional[power.PowerResult], error: Optional[BaseException]) -> None:
        self._set_buttons(True)
        if result is None:
            log.error("operator %s failed: %r", action, error)
            result = power.PowerResult(False, "操作失败（详情见日志）Failed (see the log)", repr(error), "failed")
        self._powered(action, result)

    def _powered(self, action: str, result: power.PowerResult) -> None:
        self.last_power = result
        if result.ok:
            self.power_note.ok(result.message)
            return
        self.power_note.error(result.message)
        if result.reason != "unavailable":
            self.ctx.record(action + "_failed", result.reason)

    def _set_buttons(self, enabled: bool) -> None:
        for button in (self.restart_button, self.reboot_button, self.power_button):
            button.setEnabled(enabled)
