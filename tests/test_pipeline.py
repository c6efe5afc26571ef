"""The running kiosk's edges: capture, the decider thread, gate, voice and log wired together."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import Config
from kiosk.core.events import FaceObservation, FacesSeen, Heard, Mask, PassCheck, PassPresented, Tick
from kiosk.gate.drivers import SimulatedGate
from kiosk.runtime.kiosk import Kiosk, timeline_echo
from kiosk.store.accesslog import AccessLog
from kiosk.store.db import Database
from kiosk.vision.capture import Capture, Frame
from kiosk.vision.image import to_bgr
from kiosk.vision.sources import ArraySource, CameraUnavailable, ImageFolder, open_source
from kiosk.vision.worker import VisionWorker


class Voice:
    def __init__(self, broken: bool = False):
        self.said = []
        self.broken = broken

    def say(self, key, text):
        if self.broken:
            raise RuntimeError("speaker unplugged")
        self.said.append(text)


def make_kiosk(tmp_path: Path, gate=None, voice=None) -> Kiosk:
    log = AccessLog(Database(tmp_path / "db.sqlite"), tmp_path / "spool.jsonl")
    return Kiosk(Config(), gate or SimulatedGate(), voice or Voice(), log, media_clock=True)


FACE = FacesSeen((FaceObservation(1, Mask.WITH, 0.9, (100, 100, 260, 260)),))
VALID = PassCheck(True, "ok", 1, "张三", 5)


def test_grant_pulses_the_gate_speaks_and_logs(tmp_path):
    gate, voice = SimulatedGate(), Voice()
    kiosk = make_kiosk(tmp_path, gate, voice)
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    assert len(gate.pulses) == 1 and gate.pulses[0][1] == Config().gate.pulse_ms
    assert voice.said[-1] == "您好，张三，欢迎回家，二维码有效请您通过"
    row = kiosk.access_log.list()[0]
    assert (row["outcome"], row["gate_opened"], row["resident_name"]) == ("granted", 1, "张三")
    kinds = [e.kind for e in kiosk.timeline]
    assert kinds.index("gate") < kinds.index("decided")


def test_gate_fault_is_logged_as_not_opened_and_announced(tmp_path):
    voice = Voice()
    kiosk = make_kiosk(tmp_path, SimulatedGate(fail=True), voice)
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    fault, grant = kiosk.access_log.list()[:2]
    # The grant was recorded before the gate was ordered open; the relay's failure follows it.
    assert (grant["outcome"], grant["gate_opened"]) == ("granted", 1)
    assert (fault["outcome"], fault["reason"], fault["gate_opened"], fault["resident_name"]) == \
        ("fault", "gate_fault", 0, "张三")
    assert "闸机故障，请联系物业" in voice.said


def test_broken_speaker_never_stops_the_gate(tmp_path):
    gate = SimulatedGate()
    kiosk = make_kiosk(tmp_path, gate, Voice(broken=True))
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    assert len(gate.pulses) == 1 and kiosk.access_log.list()[0]["outcome"] == "granted"


def test_scheduled_speech_arrives_at_its_time(tmp_path):
    kiosk = make_kiosk(tmp_path)
    kiosk.schedule(Heard("你好大白，请让我进入小区", "enter"), 0.5)
    kiosk.handle(Tick(), 0.4)
    assert kiosk.state.intent is None
    kiosk.handle(Tick(), 0.6)
    assert kiosk.state.intent == "enter"


def test_decider_thread_handles_posted_events(tmp_path):
    gate = SimulatedGate()
    kiosk = make_kiosk(tmp_path, gate)
    kiosk.start()
    for i in range(3):
        kiosk.post(FACE, 0.1 * i)
    kiosk.post(PassPresented(VALID), 0.4)
    kiosk.drain()
    kiosk.stop()
    assert len(gate.pulses) == 1


def test_capture_keeps_only_the_latest_frame():
    frames = [np.full((48, 64, 3), i, np.uint8) for i in range(30)]
    capture = Capture(lambda: ArraySource(frames, fps=1000.0), paced=False)
    capture.start()
    capture.join(timeout=5)
    frame = capture.get(after=-1, timeout=1)
    assert frame is not None and frame.index == 29 and int(frame.image[0, 0, 0]) == 29


def test_lossless_capture_delivers_every_frame_in_order():
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(20)]
    capture = Capture(lambda: ArraySource(frames, fps=10.0), media_clock=True, lossless=True, paced=False)
    capture.start()
    got, last = [], -1
    while True:
        frame = capture.get(after=last, timeout=2)
        if frame is None:
            break
        got.append(frame.index)
        last = frame.index
        assert frame.t == pytest.approx(frame.index / 10.0)
    assert got == list(range(20))


def test_camera_that_cannot_open_is_reported_and_recovers():
    statuses = []
    attempts = {"n": 0}

    def opener():
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise CameraUnavailable("cannot open camera '/dev/video9'")
        return ArraySource([np.zeros((8, 8, 3), np.uint8)] * 3)

    capture = Capture(opener, paced=False, on_status=statuses.append)
    capture.start()
    capture.join(timeout=10)
    assert statuses[0].startswith("unavailable: cannot open camera") and "ok" in statuses
    assert capture.frames == 3


def test_open_source_errors_are_clear(tmp_path):
    with pytest.raises(CameraUnavailable, match="not a camera index"):
        open_source(str(tmp_path / "nothing-here"))
    with pytest.raises(CameraUnavailable, match="no images"):
        open_source(str(tmp_path))
    with pytest.raises(CameraUnavailable, match="jetson-utils"):
        open_source("csi://0")


def test_image_folder_skips_corrupt_files_and_normalises_channels(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 12), np.uint8))  # grey
    (tmp_path / "b.png").write_bytes(b"not an image at all")
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((10, 12, 4), np.uint8))  # BGRA
    source = ImageFolder.from_folder(str(tmp_path))
    shapes = []
    while True:
        frame = source.read()
        if frame is None:
            break
        shapes.append(frame.shape)
    assert shapes == [(10, 12, 3), (10, 12, 3)]
    assert to_bgr(np.zeros((0, 0), np.uint8)) is None
    assert to_bgr(np.zeros((4, 4), np.uint16)).dtype == np.uint8


def test_kiosk_survives_a_bad_event(tmp_path):
    gate = SimulatedGate()
    kiosk = make_kiosk(tmp_path, gate)
    kiosk.start()
    kiosk.post("not an event", 0.0)  # type: ignore[arg-type]
    for i in range(3):
        kiosk.post(FACE, 0.1 + 0.1 * i)
    kiosk.post(PassPresented(VALID), 0.5)
    kiosk.drain()
    kiosk.stop()
    assert len(gate.pulses) == 1


# ---- bounded histories (a kiosk runs for months) ----------------------------------------------------


def _grant(kiosk: Kiosk, t0: float, serial: int) -> None:
    """One resident, masked, shows a valid pass (read from a camera frame), walks through; the kiosk is idle again."""
    face = FacesSeen((FaceObservation(serial, Mask.WITH, 0.9, (100, 100, 260, 260)),))  # a new person each time
    for i in range(3):
        kiosk.handle(face, t0 + 0.1 * i)
    frame = Frame(np.zeros((4, 4, 3), np.uint8), serial, t0 + 0.35, time.perf_counter())
    kiosk.handle(PassPresented(PassCheck(True, "ok", 1, "张三", serial)), t0 + 0.35, frame)
    for dt in (2.5, 4.0, 6.0, 9.0):
        kiosk.handle(Tick(), t0 + dt)


def test_histories_keep_only_their_newest_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(Kiosk, "timeline_keep", 7)
    monkeypatch.setattr(Kiosk, "decisions_keep", 3)
    monkeypatch.setattr(Kiosk, "latencies_keep", 3)
    gate = SimulatedGate()
    kiosk = make_kiosk(tmp_path, gate)
    noted = []
    kiosk.note_listeners.append(noted.append)
    for person in range(12):
        _grant(kiosk, 100.0 * person, serial=person + 1)
        assert len(kiosk.timeline) <= 7 and len(kiosk.decisions) <= 3 and len(kiosk.latencies_ms) <= 3
    assert len(gate.pulses) == 12 and len(kiosk.access_log.list()) == 12  # the log keeps every decision
    assert len(noted) > 7 * 3  # far more entries than kept
    assert list(kiosk.timeline) == noted[-7:]  # the newest, in order
    assert [d.pass_serial for _, d in kiosk.decisions] == [10, 11, 12]
    assert len(kiosk.latencies_ms) == 3 and all(ms >= 0 for ms in kiosk.latencies_ms)


def test_default_limits_hold_a_whole_demo_scenario():
    # The demo and the benchmarks read one Kiosk / VisionWorker per scenario (≤ ~100 frames, a few dozen
    # timeline entries, one or two decisions): the limits must be far above that, and finite.
    assert 1000 <= Kiosk.timeline_keep <= 100000
    assert 100 <= Kiosk.decisions_keep <= 100000 and 100 <= Kiosk.latencies_keep <= 100000
    assert 1000 <= VisionWorker.step_ms_keep <= 100000


def test_timeline_echo_prints_each_entry_exactly_once_across_trims(tmp_path, monkeypatch):
    monkeypatch.setattr(Kiosk, "timeline_keep", 5)
    kiosk = make_kiosk(tmp_path)
    lines = []
    kiosk.note_listeners.append(timeline_echo(lines.append))
    broken = []

    def break_once(entry):  # a broken listener stops neither the echo nor the kiosk
        if not broken:
            broken.append(entry)
            raise OSError("stdout closed")

    kiosk.note_listeners.insert(0, break_once)
    kiosk.start()
    for i in range(40):
        kiosk.post(Heard("第{}句".format(i), None), 0.01 * i)
        if i % 7 == 0:
            kiosk.note("show", "idle")  # screen changes are not echoed
    kiosk.drain()
    kiosk.stop()
    assert len(kiosk.timeline) == 5
    assert len(broken) == 1 and all(line[8:10] == "  " for line in lines)  # HH:MM:SS, kind, text
    assert [line[10:] for line in lines] == ["heard    heard 「第{}句」 → intent None".format(i) for i in range(40)]


def test_vision_worker_keeps_only_the_newest_step_times(monkeypatch):
    monkeypatch.setattr(VisionWorker, "step_ms_keep", 6)
    frames = [np.full((48, 64, 3), i, np.uint8) for i in range(25)]
    capture = Capture(lambda: ArraySource(frames, fps=1000.0), lossless=True, paced=False)
    seen = []
    worker = VisionWorker(capture, None, None, lambda code: VALID, lambda *event: None,
                          on_result=lambda result: seen.append(result.ms))
    capture.start()
    worker.start()
    worker.join(10)
    capture.stop()
    assert len(seen) == 25 and list(worker.step_ms) == seen[-6:]


def test_headless_kiosk_echoes_each_timeline_entry_once_after_trims(tmp_path, monkeypatch, capsys):
    """``dabai-kiosk run --headless`` on a one-image camera: more timeline entries than the kiosk keeps, each
    printed once, in order."""
    from kiosk.config import Home, save_config
    from kiosk.config import replace as config_replace
    from kiosk.runtime import headless
    from kiosk.store.passes import create_keys

    home = Home(tmp_path / "home")
    home.root.mkdir(parents=True)
    image = tmp_path / "lobby.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 90, np.uint8))
    config = config_replace(Config(), "speech", tts="none")
    config = config_replace(config, "listen", enabled=False)
    config = config_replace(config, "vision", face_model=str(tmp_path / "missing.onnx"))  # fast: no models
    config = config_replace(config, "camera", source=str(image), loop=False)
    save_config(config, home.config)
    create_keys(home.private_key, home.public_key)
    kiosks = []

    class Talkative(Kiosk):  # the run's kiosk, hearing 30 sentences from its decider thread
        def start(self) -> None:
            super().start()
            kiosks.append(self)
            for i in range(30):
                self.post(Heard("第{}句".format(i), None))

    monkeypatch.setattr(Kiosk, "timeline_keep", 4)
    monkeypatch.setattr(headless, "Kiosk", Talkative)
    monkeypatch.setattr(headless.signal, "signal", lambda *args: None)  # leave pytest's Ctrl-C alone
    assert headless.run_headless(home, duration=20) == 0
    out = capsys.readouterr().out.splitlines()
    heard = [line[10:] for line in out if line[10:].startswith("heard ")]
    assert heard == ["heard    heard 「第{}句」 → intent None".format(i) for i in range(30)]
    assert len(kiosks) == 1 and len(kiosks[0].timeline) == 4


def test_a_grant_that_cannot_be_recorded_does_not_open_the_gate(tmp_path):
    import sqlite3

    class FullDisk(Database):
        def executemany(self, sql, rows):
            raise sqlite3.OperationalError("database or disk is full")

    gate, voice = SimulatedGate(), Voice()
    log = AccessLog(FullDisk(tmp_path / "db.sqlite"), tmp_path / "no-such-dir" / "spool.jsonl")
    kiosk = Kiosk(Config(), gate, voice, log, media_clock=True)
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    assert gate.pulses == [] and "闸机故障，请联系物业" in voice.said
    assert "您好，张三，欢迎回家，二维码有效请您通过" not in voice.said
    held = log.unsaved  # kept in memory, written when the disk takes it, marked as not opened
    assert len(held) == 1 and (held[0].outcome, held[0].gate_opened) == ("granted", False)
    assert any("HELD CLOSED" in e.text for e in kiosk.timeline)


def test_an_access_log_alarm_keeps_the_gate_closed_until_acknowledged(tmp_path):
    gate = SimulatedGate()
    kiosk = make_kiosk(tmp_path, gate)
    kiosk.access_log.alarm = {"reason": "database_lost", "text": "records 1-9 are gone"}
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    assert gate.pulses == [] and kiosk.access_log.list()[0]["gate_opened"] == 0
    assert kiosk.access_log.acknowledge("test")
    assert kiosk.gate_hold() is None


def test_a_resident_coming_back_is_timed_from_their_new_pass_not_their_first_visit(tmp_path):
    from kiosk.vision.capture import Frame

    kiosk = make_kiosk(tmp_path)
    frame = Frame(np.zeros((4, 4, 3), np.uint8), 0, 0.0, time.perf_counter() - 100.0)  # seen 100 s ago
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35, frame)
    assert kiosk.latencies_ms[-1] > 99_000
    later = Frame(np.zeros((4, 4, 3), np.uint8), 1, 10.0, time.perf_counter())
    back = FacesSeen((FaceObservation(7, Mask.WITH, 0.9, (100, 100, 260, 260)),))
    for i in range(3):
        kiosk.handle(back, 10.0 + 0.1 * i)  # the same resident, back in a queue before the idle screen
    kiosk.handle(PassPresented(VALID), 10.35, later)
    assert len(kiosk.latencies_ms) == 2 and kiosk.latencies_ms[-1] < 1000
