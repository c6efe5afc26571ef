"""System page: models and backends in use, the app's live figures (``status()``), and CPU / GPU load,
temperatures and memory read from /proc and /sys (Jetson's GPU load from ``/sys/devices/gpu.0/load``).
A figure this machine does not offer says "unavailable"."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from kiosk.ui.operator.widgets import Page, heading, hint, run_in_background, scrolling

UNAVAILABLE = "不可用 unavailable"
REFRESH_MS = 2000
GPU_LOAD_FILES = (  # per mille; the first that exists wins
    "sys/devices/gpu.0/load",
    "sys/devices/platform/gpu.0/load",
    "sys/devices/platform/bus@0/*.gpu/load",
    "sys/devices/platform/*.gpu/load",
    "sys/devices/platform/bus@0/*.ga10b/load",
)
LIVE = (  # status() key, label, unit
    ("fps", "帧率 FPS", ""),
    ("vision_ms_p50", "视觉耗时 Vision step p50", "ms"),
    ("frame_to_display_ms_p50", "画面延迟 Frame → display p50", "ms"),
    ("detector", "检测器 Detector", ""),
    ("backend", "推理后端 Backend", ""),
    ("camera", "摄像头 Camera", ""),
    ("microphone", "麦克风 Microphone", ""),
    ("gate", "闸机 Gate", ""),
    ("voice", "语音 Voice", ""),
)
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


def models_in_use(config: Any, models_dir: str) -> Dict[str, str]:
    """What the config asks for, which inference backends can run here and which catalogue models are in."""
    from kiosk.inference import available_backends
    from kiosk.models.catalog import list_models

    backends = available_backends()
    installed = [m["name"] for m in list_models(models_dir) if m["installed"]]
    return {
        "人脸模型 Face model": config.vision.face_model,
        "口罩模型 Mask model": config.vision.mask_model or "engines/mask_classifier.onnx (default)",
        "推理后端设置 Backend setting": config.vision.backend,
        "可用后端 Backends here": ", ".join(name if why is None else "{} ✗ ({})".format(name, why)
                                          for name, why in backends.items()),
        "已安装模型 Installed models": ", ".join(installed) or "无 none ({})".format(models_dir),
        "语音 Voice": config.speech.tts,
        "识别 Recognizer": config.listen.recognizer if config.listen.enabled else "off",
    }


def format_live(key: str, value: Any, unit: str) -> str:
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
    return str(value)


class _Table(QWidget):
    """Label / value rows that can be refilled."""

    def __init__(self) -> None:
        super().__init__()
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setColumnStretch(1, 1)
        self.grid.setColumnMinimumWidth(0, 300)
        self.values: Dict[str, QLabel] = {}

    def set(self, label: str, text: str) -> None:
        if label not in self.values:
            row = len(self.values)
            value = QLabel()
            value.setWordWrap(True)
            self.grid.addWidget(QLabel("<b>{}</b>".format(label)), row, 0)
            self.grid.addWidget(value, row, 1)
            self.values[label] = value
        self.values[label].setText(text)

    def text(self, label: str) -> str:
        return self.values[label].text() if label in self.values else ""


class SystemPage(Page):
    name = "system"
    title = "系统 System"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.live = _Table()
        self.load = _Table()
        self.models = _Table()
        self._cpu: Optional[CpuTimes] = None
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(heading("运行状态 Live"))
        column.addWidget(self.live)
        column.addWidget(heading("负载与温度 Load and temperature"))
        column.addWidget(self.load)
        column.addWidget(heading("模型与后端 Models and backends"))
        column.addWidget(self.models)
        column.addWidget(hint("每 {} 秒刷新 Refreshed every {} s".format(REFRESH_MS // 1000, REFRESH_MS // 1000)))
        column.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(scrolling(body))
        self.show_live()
        self.show_load({"cpu": None, "temperatures": [], "gpu": None, "memory": None})

    def on_show(self) -> None:
        self.refresh()
        self.timer.start()
        config = self.ctx.config
        models_dir = str(self.ctx.home.models)
        run_in_background(lambda: models_in_use(config, models_dir), self._models)

    def on_hide(self) -> None:
        self.timer.stop()

    def refresh(self) -> None:
        self.show_live()
        before = self._cpu
        run_in_background(lambda: snapshot(before), self._loaded)

    def show_live(self) -> None:
        status = self.ctx.status()
        for key, label, unit in LIVE:
            self.live.set(label, format_live(key, status.get(key), unit))
        known = {key for key, _, _ in LIVE}
        for key in sorted(k for k in status if k not in known):
            self.live.set(key, format_live(key, status[key], ""))

    def _loaded(self, snap: Optional[Dict[str, Any]], error: Optional[BaseException]) -> None:
        if snap is None:
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
            self.models.set("模型 Models", "{}: {}".format(UNAVAILABLE, error))
            return
        for label, text in (found or {}).items():
            self.models.set(label, text)
