"""Devices page: camera, microphone and speaker, with a live camera preview, a microphone level meter
and a test sound. Devices are opened and listed on worker threads; the screen never waits for one."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage, QPixmap
from PyQt5.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from kiosk.config import Config
from kiosk.ui.operator.widgets import (
    ConfigForm,
    Note,
    Page,
    Stream,
    heading,
    hint,
    run_in_background,
    save_forms,
)

log = logging.getLogger(__name__)

CAMERA_LABELS = {"source": "摄像头", "width": "宽度（像素）", "height": "高度（像素）", "fps": "帧率", "loop": "循环播放文件",
                 "flip": "画面翻转"}
LISTEN_LABELS = {"source": "麦克风"}
SPEECH_LABELS = {"output": "扬声器", "tts": "语音引擎"}
TEST_TEXT = "您好，这是大白的测试声音"
PREVIEW_W, PREVIEW_H = 320, 240


# ---- what is there --------------------------------------------------------------------------


def list_cameras() -> List[str]:
    """Camera specs found on this machine (:func:`kiosk.vision.cameras.list_cameras`): CSI sensors as
    csi://N, then V4L2 devices."""
    from kiosk.vision.cameras import list_cameras as found

    return [camera.spec for camera in found()]


def list_audio(kind: str) -> List[str]:
    """Names of the sounddevice devices with ``kind`` ("input" or "output") channels; raises when
    sounddevice or PortAudio is missing."""
    import sounddevice as sd  # type: ignore[import-not-found]  # OSError without PortAudio

    key = "max_input_channels" if kind == "input" else "max_output_channels"
    return [str(d["name"]) for d in sd.query_devices() if int(d.get(key, 0) or 0) > 0]


def probe_devices() -> Dict[str, Any]:
    """Everything the pickers show; each part says why it is missing instead of raising."""
    from kiosk.vision.cameras import list_cameras as found_cameras

    cameras = found_cameras()
    out: Dict[str, Any] = {"cameras": [c.spec for c in cameras], "camera_labels": {c.spec: c.label for c in cameras}}
    for kind, key in (("input", "microphones"), ("output", "speakers")):
        try:
            out[key] = list_audio(kind)
        except Exception as exc:  # ImportError, OSError (no PortAudio), PortAudioError
            out[key] = None
            out[key + "_error"] = "sounddevice unavailable: {}".format(exc)
    return out


def camera_problem(spec: str) -> Optional[str]:
    """Why a camera spec cannot be a camera here, or None. Nothing is opened and network cameras are not
    dialled: that could take long."""
    from kiosk.vision.cameras import csi_sensor_of
    from kiosk.vision.sources import CameraSpecError, jetson_utils_module, opencv_has_gstreamer, parse_camera_spec

    spec = spec.strip()
    key = "camera.source = {!r}: ".format(spec)
    if not spec:
        return key + "must not be empty"
    try:
        parsed = parse_camera_spec(spec)
    except CameraSpecError as exc:
        return key + str(exc).split(": ", 1)[-1]
    if parsed.kind in ("index", "v4l2"):
        node = "/dev/video" + parsed.location if parsed.kind == "index" else parsed.location
        if os.name == "posix" and not os.path.exists(node):
            return key + "no such device: {} does not exist".format(node)
        csi = csi_sensor_of(node)
        if csi is not None:
            return key + "{} is a CSI sensor ({}): V4L2 gives raw Bayer; choose {}".format(node, csi.name, csi.spec)
        return None
    if parsed.kind == "csi":
        if jetson_utils_module() is None and not opencv_has_gstreamer():
            return key + "CSI cameras need jetson-utils or JetPack's OpenCV with GStreamer (on the Jetson)"
        return None
    if parsed.kind == "stream":
        return None
    if not os.path.exists(parsed.location):
        return key + "no such device, file or folder"
    return None


def audio_problem(key: str, spec: str, names: Optional[List[str]], error: Optional[str], extra: tuple) -> Optional[str]:
    """Why an audio spec names no device here: ``extra`` are the words it may also be (auto, none)."""
    spec = spec.strip()
    prefix = "{} = {!r}: ".format(key, spec)
    if not spec:
        return prefix + "must not be empty"
    if spec in extra:
        return None
    if spec.startswith("wav:"):
        path = spec[4:]
        if key == "speech.output":  # a folder the prompts are written into; made when missing
            return None if path and os.path.isdir(os.path.dirname(os.path.abspath(path))) else prefix + "no such folder"
        return None if os.path.isfile(path) else prefix + "no such file"
    if names is None:
        return prefix + "cannot check the device ({})".format(error or "device list not ready")
    if spec.isdigit():
        return None if int(spec) < len(names) else prefix + "no such device (devices: {})".format(len(names))
    if any(spec.lower() in n.lower() for n in names):
        return None
    return prefix + "no such device (found: {})".format(", ".join(names) or "none")


# ---- preview, meter, test sound --------------------------------------------------------------


def to_qimage(frame: np.ndarray, width: int = PREVIEW_W) -> QImage:
    """A BGR (or grey) frame as a small RGB QImage, made on the worker thread."""
    import cv2

    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    h, w = frame.shape[:2]
    scale = width / float(w)
    small = cv2.resize(frame[:, :, :3], (width, max(1, int(round(h * scale)))), interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(small[:, :, ::-1])
    return QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format_RGB888).copy()


Producer = Callable[[threading.Event, Callable[[Any], None]], None]


def preview_producer(config: Config, lent: Optional[Callable[[], Any]]) -> Producer:
    """Frames for the preview: the app's own newest frame when it lends them for the camera it runs
    (the device is busy otherwise), else the chosen source opened here, at about 8 frames a second."""
    cam = config.camera

    def produce(stop: threading.Event, emit: Callable[[Any], None]) -> None:
        from kiosk.vision.capture import Capture

        if lent is not None:
            # The app's camera: when it is down the app has no frame to lend, and waiting for one forever would
            # leave the operator reading "Opening…"; after the same grace the capture gives a camera, say so.
            due = time.monotonic() + Capture.first_frame_grace_s
            while not stop.wait(0.125):
                frame = lent()
                if frame is not None:
                    due = time.monotonic() + Capture.lost_after_s
                    emit(to_qimage(np.asarray(frame)))
                elif time.monotonic() > due:
                    raise RuntimeError("the running kiosk has no picture from {}".format(cam.source))
            return
        from kiosk.vision.sources import open_source

        source = open_source(cam.source, cam.width, cam.height, cam.fps, loop=True, flip=cam.flip)
        # A timeout is no failure: a CSI sensor takes seconds to give its first frame (kiosk.vision.capture)
        due, grace = time.monotonic() + Capture.first_frame_grace_s, Capture.first_frame_grace_s
        try:
            while not stop.is_set():
                frame = source.read()
                if frame is None:
                    if time.monotonic() > due:
                        raise RuntimeError("{} gave no frame for {:g} s".format(cam.source, grace))
                else:
                    due, grace = time.monotonic() + Capture.lost_after_s, Capture.lost_after_s
                    emit(to_qimage(frame))
                stop.wait(0.125)
        finally:
            source.close()

    return produce


def level_dbfs(chunk: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if len(chunk) else 0.0
    return 20.0 * math.log10(max(rms, 1e-6))


def meter_producer(spec: str) -> Producer:
    """The microphone's level (dBFS per 32 ms chunk) until stopped or the recording ends."""

    def produce(stop: threading.Event, emit: Callable[[Any], None]) -> None:
        from kiosk.audio.sources import open_audio_source

        source = open_audio_source(spec, realtime_files=True)
        try:
            for chunk in source.chunks():
                if stop.is_set():
                    break
                emit(level_dbfs(chunk))
        finally:
            source.close()
        emit(None)  # the end of a recording

    return produce


def play_test_sound(config: Config, home: Any) -> str:
    """Say the test sentence with ``config``'s voice and speaker; says how it went (worker thread)."""
    from kiosk.runtime.assemble import build_speaker

    speaker = build_speaker(config, home, warm=False)
    try:
        if not speaker.say("operator_test", TEST_TEXT):
            return "语音已关闭 Voice is off ({})".format(getattr(speaker, "reason", config.speech.tts))
        if hasattr(speaker, "wait_idle"):
            speaker.wait_idle(15.0)
    finally:
        speaker.stop()
    return "已播放测试声音 Test sound played ({})".format(config.speech.output)


# ---- the page --------------------------------------------------------------------------------


class DevicesPage(Page):
    name = "devices"
    title = "设备 Devices"

    def __init__(self, ctx: Any, parent: Optional[QWidget] = None) -> None:
        super().__init__(ctx, parent)
        self.found: Dict[str, Any] = {}
        self.preview: Optional[Stream] = None
        self.meter: Optional[Stream] = None
        self.frames_shown = 0
        self.last_level: Optional[float] = None

        self.camera = ConfigForm("camera", labels=CAMERA_LABELS)
        self.listen = ConfigForm("listen", keys=["source"], labels=LISTEN_LABELS)
        self.speech = ConfigForm("speech", keys=["output", "tts"], labels=SPEECH_LABELS)
        self.pick_camera = self._picker(self.camera, "source")
        self.pick_mic = self._picker(self.listen, "source", ("auto",))
        self.pick_speaker = self._picker(self.speech, "output", ("auto", "none"))

        self.image = QLabel("预览 Preview")
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setFixedSize(PREVIEW_W, PREVIEW_H)
        self.image.setStyleSheet("background: #20242a; color: #c8d0d8; border-radius: 6px;")
        self.preview_note = Note()
        self.preview_button = QPushButton("预览所选摄像头 Preview")
        self.preview_button.clicked.connect(self.start_preview)
        self.level = QProgressBar()
        self.level.setRange(0, 60)
        self.level.setFormat("电平 level")
        self.level.setTextVisible(True)
        self.level_note = Note()
        self.meter_button = QPushButton("测试麦克风 Mic level")
        self.meter_button.setCheckable(True)
        self.meter_button.toggled.connect(self._toggle_meter)
        self.sound_button = QPushButton("播放测试声音 Test sound")
        self.sound_button.clicked.connect(self.test_sound)
        self.sound_note = Note()
        self.rescan_button = QPushButton("重新检测设备 Rescan")
        self.rescan_button.clicked.connect(self.rescan)
        self.note = Note()
        self.save_button = QPushButton("保存并应用 Save")
        self.save_button.setProperty("accent", True)
        self.save_button.clicked.connect(self.save)

        tools = QVBoxLayout()
        tools.addWidget(self.preview_button)
        tools.addWidget(self.preview_note)
        tools.addSpacing(8)
        tools.addWidget(self.meter_button)
        tools.addWidget(self.level)
        tools.addWidget(self.level_note)
        tools.addSpacing(8)
        tools.addWidget(self.sound_button)
        tools.addWidget(self.sound_note)
        tools.addStretch(1)
        tools.addWidget(self.rescan_button)
        tools_box = QWidget()
        tools_box.setLayout(tools)
        tools_box.setMaximumWidth(460)
        top = QHBoxLayout()
        top.addWidget(self.image, 0, Qt.AlignTop)
        top.addWidget(tools_box, 1)
        top.addStretch(0)

        body = QWidget()
        column = QVBoxLayout(body)
        column.addLayout(top)
        for title, picker, form in (("摄像头 Camera", self.pick_camera, self.camera),
                                    ("麦克风 Microphone", self.pick_mic, self.listen),
                                    ("扬声器与语音 Speaker and voice", self.pick_speaker, self.speech)):
            row = QHBoxLayout()
            row.addWidget(heading(title))
            row.addStretch(1)
            row.addWidget(hint("检测到 Found:"))
            row.addWidget(picker)
            column.addLayout(row)
            column.addWidget(form)
        column.addStretch(1)
        self.lay_out(body, self.note, self.save_button)
        self._load()

    def _picker(self, form: ConfigForm, key: str, words: tuple = ()) -> QComboBox:
        combo = QComboBox()
        combo.setMinimumWidth(220)
        combo.setMaximumWidth(360)
        combo.addItems(list(words))
        # an item's data is the value when its text is a longer label (a camera with its name)
        combo.activated[int].connect(lambda i: form.set_value(key, combo.itemData(i) or combo.itemText(i)))
        return combo

    def _load(self) -> None:
        for form in (self.camera, self.listen, self.speech):
            form.load(self.ctx.config)

    # lifecycle

    def on_show(self) -> None:
        self._load()
        self.rescan()
        self.start_preview()

    def on_hide(self) -> None:
        self.stop_preview()
        self.meter_button.setChecked(False)

    def rescan(self) -> None:
        self.rescan_button.setEnabled(False)
        run_in_background(probe_devices, self._found)

    def _found(self, found: Optional[Dict[str, Any]], error: Optional[BaseException]) -> None:
        self.rescan_button.setEnabled(True)
        self.found = found or {"error": str(error)}
        for combo, key, words in ((self.pick_camera, "cameras", ()), (self.pick_mic, "microphones", ("auto",)),
                                  (self.pick_speaker, "speakers", ("auto", "none"))):
            combo.clear()
            labels = self.found.get("camera_labels", {}) if key == "cameras" else {}
            combo.addItems(list(words))
            for value in self.found.get(key) or []:
                combo.addItem(labels.get(value, value), value)
            combo.setEnabled(combo.count() > 0)
            if combo.count() == 0:
                combo.addItem("（未找到 none found）")
            if self.found.get(key + "_error"):
                combo.setToolTip(self.found[key + "_error"])

    # validation and saving

    def problems(self) -> List[str]:
        """Devices that do not exist here; checked only for values changed on the form, so a device that
        is unplugged right now does not stop the operator from saving the others."""
        config = self.ctx.config
        out = []
        source = self.camera.text("source")
        if source.strip() != config.camera.source:
            problem = camera_problem(source)
            if problem:
                out.append(problem)
        mic = self.listen.text("source")
        if mic.strip() != config.listen.source:
            problem = audio_problem("listen.source", mic, self.found.get("microphones"),
                                    self.found.get("microphones_error"), ("auto",))
            if problem:
                out.append(problem)
        speaker = self.speech.text("output")
        if speaker.strip() != config.speech.output:
            problem = audio_problem("speech.output", speaker, self.found.get("speakers"),
                                    self.found.get("speakers_error"), ("auto", "none"))
            if problem:
                out.append(problem)
        return out

    def _values(self) -> Dict[str, Dict[str, Any]]:
        values = {form.section: form.values() for form in (self.camera, self.listen, self.speech)}
        for section, key in (("camera", "source"), ("listen", "source"), ("speech", "output")):
            if isinstance(values[section][key], str):
                values[section][key] = values[section][key].strip()
        return values

    def save(self) -> bool:
        for form in (self.camera, self.listen, self.speech):  # the pickers' values without stray spaces
            key = "output" if form.section == "speech" else "source"
            form.set_value(key, form.text(key).strip())
        saved = save_forms(self.ctx, [self.camera, self.listen, self.speech], self.problems(), note=self.note)
        if saved:
            self.start_preview()
        return saved

    def _candidate(self) -> Optional[Config]:
        """The config with this page's values, if they are valid (not saved)."""
        candidate, _ = self.ctx.check(self._values())
        return candidate

    # preview

    def start_preview(self) -> None:
        self.stop_preview()
        candidate = self._candidate()
        lent = None
        if candidate is not None and self.ctx.frames is not None and candidate.camera == self.ctx.config.camera:
            lent = self.ctx.frames  # the camera the app runs: it is busy, show the app's frames
        problem = camera_problem(self.camera.text("source")) if candidate is not None and lent is None else None
        if candidate is None or problem:
            self.preview_note.error("摄像头不可用 Camera unavailable: {}".format(problem or "invalid camera settings"))
            self.image.setText("无预览 No preview")
            return
        self.preview = Stream(preview_producer(candidate, lent), self)
        self.preview.item.connect(self._frame)
        self.preview.failed.connect(self._preview_failed)
        self.preview_note.busy("正在打开 Opening {}…".format(candidate.camera.source))
        self.preview.start()

    def stop_preview(self) -> None:
        if self.preview is not None:
            self.preview.stop()
            self.preview = None

    def _frame(self, image: QImage) -> None:
        self.frames_shown += 1
        self.image.setPixmap(QPixmap.fromImage(image).scaled(PREVIEW_W, PREVIEW_H, Qt.KeepAspectRatio))
        if self.frames_shown == 1 or self.preview_note.text().startswith("正在"):
            self.preview_note.ok("预览中 Live: {}".format(self.camera.text("source")))

    def _preview_failed(self, message: str) -> None:
        log.warning("operator: camera preview failed: %s", message)  # the detail is for the log and doctor
        self.image.setText("无预览 No preview")
        self.preview_note.error("摄像头没有画面：请检查摄像头的连线和电源，或点“查找设备”选择其他摄像头。"
                                "No picture: check the camera's cable, or pick another camera.")

    # microphone level

    def _toggle_meter(self, on: bool) -> None:
        if self.meter is not None:
            self.meter.stop()
            self.meter = None
        self.level.setValue(0)
        if not on:
            self.level_note.busy("")
            return
        spec = self.listen.text("source").strip()
        problem = audio_problem("listen.source", spec, self.found.get("microphones"),
                                self.found.get("microphones_error"), ("auto",))
        if problem and spec != self.ctx.config.listen.source:
            self.level_note.error(problem)
            self.meter_button.setChecked(False)
            return
        self.meter = Stream(meter_producer(spec), self)
        self.meter.item.connect(self._level)
        self.meter.failed.connect(self._meter_failed)
        self.level_note.busy("正在打开 Opening {}…".format(spec))
        self.meter.start()

    def _level(self, dbfs: Optional[float]) -> None:
        if dbfs is None:
            self.level_note.busy("录音结束 End of the recording")
            return
        self.last_level = dbfs
        self.level.setValue(int(max(0.0, min(60.0, dbfs + 60.0))))
        self.level_note.ok("{:.0f} dBFS".format(dbfs))

    def _meter_failed(self, message: str) -> None:
        log.warning("operator: microphone level failed: %s", message)
        self.level_note.error("麦克风打不开：请检查麦克风是否插好，或选择其他麦克风。Microphone failed: check it is plugged in.")
        self.meter_button.setChecked(False)

    # test sound

    def test_sound(self) -> None:
        candidate = self._candidate()
        if candidate is None:
            self.sound_note.error("设置有误 Fix the settings first")
            return
        problem = audio_problem("speech.output", self.speech.text("output"), self.found.get("speakers"),
                                self.found.get("speakers_error"), ("auto", "none"))
        if problem and candidate.speech.output != self.ctx.config.speech.output:
            self.sound_note.error(problem)
            return
        self.sound_button.setEnabled(False)
        self.sound_note.busy("正在播放 Playing…")
        run_in_background(lambda: play_test_sound(candidate, self.ctx.home), self._played)

    def _played(self, result: Optional[str], error: Optional[BaseException]) -> None:
        self.sound_button.setEnabled(True)
        if error is not None:
            self.sound_note.error("无法播放 Cannot play: {}".format(error))
        else:
            self.sound_note.ok(str(result))
