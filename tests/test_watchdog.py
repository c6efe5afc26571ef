"""systemd's notify protocol and the watchdog: a real socket, the real kiosk process, a real stuck decider."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from kiosk.config import Config, Home
from kiosk.runtime.watchdog import Notifier, Watchdog, heartbeat_of, stop_supervision, supervise

REPO = Path(__file__).resolve().parents[1]


class NotifySocket:
    """systemd's end of ``$NOTIFY_SOCKET``: a bound Unix datagram socket recording (time, message)."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is None:  # the abstract namespace, as systemd itself uses for some managers
            name = "dabai-test-{}".format(uuid.uuid4().hex)
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.sock.bind(str(path))
            self.env = str(path)
        self.sock.settimeout(0.1)
        self.messages: List[Tuple[float, str]] = []

    def read_until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append((time.monotonic(), data.decode("utf-8")))
        return done()

    def with_field(self, field: str) -> List[Tuple[float, str]]:
        return [(t, m) for t, m in self.messages if field in m.split("\n")]

    def statuses(self) -> List[str]:
        return [line[7:] for _, m in self.messages for line in m.split("\n") if line.startswith("STATUS=")]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket()
    yield sock
    sock.close()


# ---- the protocol ------------------------------------------------------------------------------------


def test_outside_systemd_nothing_is_sent_and_nothing_runs():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.ready() is False and notifier.ping() is False
    assert supervise({"decider": lambda: time.monotonic()}, "running", notifier) is None


def test_messages_reach_a_socket_file_and_the_abstract_namespace(tmp_path):
    for path in (tmp_path / "notify", None):
        sock = NotifySocket(path)
        notifier = Notifier({"NOTIFY_SOCKET": sock.env})
        assert notifier.ready("running\nheadless") and notifier.ping() and notifier.stopping("bye")
        assert sock.read_until(lambda s=sock: len(s.messages) == 3, 2)
        ready, ping, stopping = (m for _, m in sock.messages)
        assert ready.split("\n") == ["READY=1", "MAINPID={}".format(os.getpid()), "STATUS=running headless"]
        assert ping == "WATCHDOG=1" and stopping == "STOPPING=1\nSTATUS=bye"
        notifier.close()
        sock.close()


def test_a_vanished_socket_is_logged_not_raised(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled and notifier.ping() is False
    assert "cannot send WATCHDOG=1" in caplog.text


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_this_process():
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}).watchdog_s == 15.0
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000",
                     "WATCHDOG_PID": str(os.getpid())}).watchdog_s == 15.0
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "soon"}).watchdog_s is None
    assert Notifier({"NOTIFY_SOCKET": "@x"}).watchdog_s is None


def test_a_part_being_reopened_is_not_judged_and_a_stale_one_is_named():
    now = [100.0]
    watchdog = Watchdog(Notifier({}), interval_s=1, limits={"capture": 45, "decider": 10}, clock=lambda: now[0])
    part: List[Optional[object]] = [None]
    watchdog.watch("capture", heartbeat_of(lambda: part[0]))
    watchdog.watch("decider", lambda: 99.0)
    assert watchdog.check() == []
    part[0] = type("Capture", (), {"heartbeat": 50.0})()
    now[0] = 106.0
    assert watchdog.check() == ["capture (no heartbeat for 56 s)"]
    now[0] = 130.0
    assert watchdog.check() == ["capture (no heartbeat for 80 s)", "decider (no heartbeat for 31 s)"]


# ---- idle but healthy threads still beat ----------------------------------------------------------------


def _advances(get, within: float) -> bool:
    first = get()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if get() > first:
            return True
        time.sleep(0.05)
    return False


def test_idle_decider_capture_backing_off_and_idle_vision_all_beat():
    from kiosk.gate.drivers import SimulatedGate
    from kiosk.runtime.assemble import SilentSpeaker
    from kiosk.runtime.kiosk import Kiosk
    from kiosk.vision.capture import Capture
    from kiosk.vision.sources import CameraUnavailable
    from kiosk.vision.worker import VisionWorker

    kiosk = Kiosk(Config(), SimulatedGate(), SilentSpeaker("test"), None, media_clock=True)  # no ticker: idle

    def no_camera():
        raise CameraUnavailable("no camera on /dev/video0")

    capture = Capture(no_camera, on_status=lambda status: None)
    capture.backoff_first = capture.backoff_max = 0.2
    worker = VisionWorker(capture, None, None, lambda payload: None, kiosk.post)
    kiosk.start()
    capture.start()
    worker.start()
    try:
        assert _advances(lambda: kiosk.heartbeat, 2.5)  # its queue wait is bounded (1 s)
        assert _advances(lambda: capture.heartbeat, 1.0) and capture.status.startswith("unavailable")
        assert _advances(lambda: worker.heartbeat, 1.5) and worker.capture.frames == 0
    finally:
        worker.stop()
        capture.stop()
        kiosk.stop()


# ---- a stuck decider stops the pings ------------------------------------------------------------------


def test_a_stuck_decider_stops_the_pings_and_status_names_it(notify):
    from kiosk.gate.drivers import SimulatedGate
    from kiosk.runtime.assemble import SilentSpeaker
    from kiosk.runtime.kiosk import Kiosk

    kiosk = Kiosk(Config(), SimulatedGate(), SilentSpeaker("test"), None)
    entered, release = threading.Event(), threading.Event()

    def handle(event, now, frame=None):  # the real decider thread runs this for each event
        if event == "hang":
            entered.set()
            release.wait(20)  # e.g. a driver call that never returns
        return []

    kiosk.handle = handle  # type: ignore[method-assign]
    kiosk.start()
    notifier = Notifier({"NOTIFY_SOCKET": notify.env, "WATCHDOG_USEC": "100000"})  # a ping every 50 ms
    limit = 0.5
    watchdog = supervise({"decider": lambda: kiosk.heartbeat}, "running", notifier)
    assert watchdog is not None and watchdog.interval_s == 0.05
    watchdog.limits["decider"] = limit
    try:
        assert notify.read_until(lambda: len(notify.with_field("WATCHDOG=1")) >= 5, 5)
        assert "READY=1" in notify.messages[0][1].split("\n")
        kiosk.post("hang")  # type: ignore[arg-type]
        assert entered.wait(5)
        hung_at = time.monotonic()
        assert notify.read_until(lambda: any("stuck: decider" in s for s in notify.statuses()), 5)
        notify.read_until(lambda: False, 1.0)  # a second more: no ping may come
        pings = [t for t, _ in notify.with_field("WATCHDOG=1")]
        stuck_at = next(t for t, m in notify.messages if "stuck: decider" in m)
        assert not [t for t in pings if t > stuck_at], "pinged after the decider was stuck"
        assert pings[-1] < hung_at + limit + 0.3  # the last ping came within the limit of the hang
        assert watchdog.stuck and watchdog.stuck[0].startswith("decider (no heartbeat for")
        release.set()  # it comes back: pings again, status running
        assert notify.read_until(lambda: len([t for t in notify.with_field("WATCHDOG=1") if t[0] > stuck_at]) >= 2, 5)
        assert notify.statuses()[-1] == "running"
    finally:
        release.set()
        stop_supervision(watchdog)
        watchdog.halt()
        kiosk.stop()


# ---- the real kiosk process under a notify socket ------------------------------------------------------------


def _kiosk_env(home: Home, **extra: str) -> dict:
    env = dict(os.environ, DABAI_HOME=str(home.root), PYTHONUNBUFFERED="1")
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    env.update(extra)
    return env


def test_the_kiosk_process_says_ready_then_pings_then_stopping(run_home, notify):
    home = run_home
    env = _kiosk_env(home, NOTIFY_SOCKET=notify.env, WATCHDOG_USEC="400000")  # a ping every 0.2 s
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--headless"], cwd=str(REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert notify.read_until(lambda: notify.with_field("READY=1"), 60), proc.stderr.read1(4000) if \
            proc.poll() is not None else "no READY=1"
        ready_at, ready = notify.with_field("READY=1")[0]
        assert "MAINPID={}".format(proc.pid) in ready and "STATUS=running headless (camera" in ready
        assert notify.read_until(lambda: len(notify.with_field("WATCHDOG=1")) >= 5, 10)
        pings = [t for t, _ in notify.with_field("WATCHDOG=1")]
        assert pings[0] >= ready_at  # READY=1 first, then the pings
        assert max(b - a for a, b in zip(pings, pings[1:])) < 0.4 * 2  # well inside WatchdogSec
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        notify.read_until(lambda: notify.with_field("STOPPING=1"), 2)
        assert notify.with_field("STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_the_window_app_says_ready_and_pings_too(run_home, notify):
    """``run`` with a window (Qt's offscreen platform here): the same READY=1 and pings, with the GUI thread
    among the watched parts; STOPPING=1 when the window closes."""
    pytest.importorskip("PyQt5.QtWidgets")
    home = run_home
    env = _kiosk_env(home, NOTIFY_SOCKET=notify.env, WATCHDOG_USEC="400000", QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--window", "320x240", "--duration", "4"],
                            cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert notify.read_until(lambda: notify.with_field("STOPPING=1"), 90)
        assert proc.wait(30) == 0
        ready_at, ready = notify.with_field("READY=1")[0]
        assert "STATUS=running (camera" in ready and ready.endswith(", window)")
        pings = [t for t, _ in notify.with_field("WATCHDOG=1") if t > ready_at]
        assert len(pings) >= 5 and not any("stuck" in s for s in notify.statuses())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
