"""The kiosk side of the display: the X cookie and runtime dir where the session keeps them, a window probe
that can fail without taking the kiosk down, and ``run`` waiting for the display, then running headless."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.runtime.display import DisplayWatch, prepare_session_env, probe_window, qt_failure, wait_for_window

REPO = Path(__file__).resolve().parents[1]
UID = 1234


@pytest.fixture
def session(tmp_path):
    """A fake /run/user, home and LightDM tree for the user 1234 ("kiosk")."""
    run_user = tmp_path / "run" / "user"
    runtime = run_user / str(UID)
    runtime.mkdir(parents=True)
    home = tmp_path / "home" / "kiosk"
    home.mkdir(parents=True)
    lightdm = tmp_path / "var" / "run" / "lightdm"
    sockets = tmp_path / "tmp" / ".X11-unix"
    sockets.mkdir(parents=True)
    (sockets / "X0").touch()  # the X server of :0 is up
    return {"run_user": run_user, "runtime": runtime, "home": home, "lightdm": lightdm,
            "account": (UID, str(home), "kiosk"), "sockets": sockets}


def _prepare(env, session):
    return prepare_session_env(env, session["run_user"], session["lightdm"], session["account"], session["sockets"])


def _touch(path: Path, mtime: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x01\x00cookie")
    if mtime:
        os.utime(str(path), (mtime, mtime))
    return path


def test_gdm_cookie_is_found_when_xauthority_is_unset_and_runtime_dir_is_set(session):
    gdm = _touch(session["runtime"] / "gdm" / "Xauthority")
    _touch(session["home"] / ".Xauthority")  # GDM's comes first: ~/.Xauthority may be a stale one
    env = {"DISPLAY": ":0"}
    notes = _prepare(env, session)
    assert env == {"DISPLAY": ":0", "XAUTHORITY": str(gdm), "XDG_RUNTIME_DIR": str(session["runtime"])}
    assert notes == ["XAUTHORITY={}".format(gdm), "XDG_RUNTIME_DIR={}".format(session["runtime"])]


def test_a_cookie_path_that_does_not_exist_is_replaced_a_real_one_kept(session):
    home_cookie = _touch(session["home"] / ".Xauthority")
    env = {"DISPLAY": ":0", "XAUTHORITY": "/home/kiosk/.Xauthority-gone", "XDG_RUNTIME_DIR": "/elsewhere"}
    _prepare(env, session)
    assert env["XAUTHORITY"] == str(home_cookie) and env["XDG_RUNTIME_DIR"] == "/elsewhere"  # set: left alone
    own = _touch(session["home"] / "own-cookie")
    env = {"DISPLAY": ":0", "XAUTHORITY": str(own)}
    _prepare(env, session)
    assert env["XAUTHORITY"] == str(own)


def test_newest_xwayland_cookie_then_lightdm(session):
    _touch(session["runtime"] / ".mutter-Xwaylandauth.OLD123", mtime=1000)
    new = _touch(session["runtime"] / ".mutter-Xwaylandauth.NEW456", mtime=2000)
    env = {"DISPLAY": ":0"}
    _prepare(env, session)
    assert env["XAUTHORITY"] == str(new)
    for cookie in session["runtime"].glob(".mutter-*"):
        cookie.unlink()
    lightdm = _touch(session["lightdm"] / "kiosk" / "xauthority")
    env = {"DISPLAY": ":0"}
    _prepare(env, session)
    assert env["XAUTHORITY"] == str(lightdm)


def test_nothing_is_set_without_a_display_or_a_session(session):
    _touch(session["runtime"] / "gdm" / "Xauthority")
    env = {}
    _prepare(env, session)
    assert "XAUTHORITY" not in env  # no X display: no cookie to look for
    session["runtime"].joinpath("gdm", "Xauthority").unlink()
    session["runtime"].joinpath("gdm").rmdir()
    session["runtime"].rmdir()
    env = {"DISPLAY": ":0"}
    assert _prepare(env, session) == [] and env == {"DISPLAY": ":0"}  # not logged in yet


def _cookie_file(path: Path, displays) -> Path:
    """An Xauthority file as xauth(1) writes it: per entry family, address, number, name, data."""
    def counted(data: bytes) -> bytes:
        return len(data).to_bytes(2, "big") + data

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((0x100).to_bytes(2, "big") + counted(b"jetson") + counted(n.encode()) +
                              counted(b"MIT-MAGIC-COOKIE-1") + counted(bytes(16)) for n in displays))
    return path


def test_a_session_on_another_display_is_found_through_its_cookie(session):
    from kiosk.runtime.display import xauthority_displays

    cookie = _cookie_file(session["runtime"] / "gdm" / "Xauthority", ["1", "1"])
    assert xauthority_displays(cookie) == ["1"]
    (session["sockets"] / "X0").unlink()
    env = {"DISPLAY": ":0"}
    _prepare(env, session)
    assert env["DISPLAY"] == ":0"  # :1 has no X socket either: nothing better to offer
    (session["sockets"] / "X1").touch()  # GDM's greeter held :0, the auto-login session got :1
    notes = _prepare(env, session)
    assert env["DISPLAY"] == ":1" and notes[0].startswith("DISPLAY=:1 (the session's cookie names it")
    (session["sockets"] / "X0").touch()
    env = {"DISPLAY": ":0"}
    _prepare(env, session)
    assert env["DISPLAY"] == ":0"  # :0 is up: the unit's display is kept


@pytest.mark.skipif(shutil.which("xauth") is None, reason="xauth not installed (apt-get install xauth)")
def test_the_cookie_reader_reads_what_xauth_writes(tmp_path):
    from kiosk.runtime.display import xauthority_displays

    cookie = tmp_path / "Xauthority"
    for display in (":1", "jetson/unix:2"):
        subprocess.run(["xauth", "-q", "-f", str(cookie), "add", display, ".", "00" * 16], check=True,
                       capture_output=True, timeout=10)
    assert xauthority_displays(cookie) == ["1", "2"]


# ---- the probe: Qt aborts a process that cannot reach its display, the probe's child instead of the kiosk ------


def _unreachable_display() -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=":99", XAUTHORITY="/nonexistent")
    env.pop("WAYLAND_DISPLAY", None)
    return env


def test_an_unreachable_display_is_a_reason_not_an_abort():
    started = time.monotonic()
    why = probe_window(timeout_s=20, environ=_unreachable_display())
    assert why is not None and why.startswith("xcb DISPLAY=:99 unusable: Qt aborted")
    # Qt's own words: no display, or (a machine without the xcb plugin's libraries) no plugin
    assert "could not connect to display" in why or "Could not load the Qt platform plugin" in why
    assert time.monotonic() - started < 20  # it answered, it did not time out


def test_the_same_in_process_would_abort():
    """Why the probe is a child: a QApplication on an unreachable xcb display ends the process (SIGABRT)."""
    code = "from PyQt5.QtWidgets import QApplication; QApplication(['x']); print('survived')"
    proc = subprocess.run([sys.executable, "-c", code], env=_unreachable_display(), capture_output=True, timeout=20)
    assert proc.returncode == -6 and b"survived" not in proc.stdout


def test_a_reachable_platform_answers_none():
    assert probe_window(timeout_s=20, environ=dict(os.environ, QT_QPA_PLATFORM="offscreen")) is None


def test_a_hung_display_times_out(monkeypatch):
    monkeypatch.setattr("kiosk.runtime.display.PROBE", "import time; time.sleep(30)")
    started = time.monotonic()
    why = probe_window(timeout_s=0.5, environ=dict(os.environ))
    assert "did not answer within 0 s" in why or "did not answer within 1 s" in why
    assert time.monotonic() - started < 5


def test_qt_failure_keeps_the_telling_lines():
    stderr = ("qt.qpa.xcb: could not connect to display :0\n"
              "qt.qpa.plugin: Could not load the Qt platform plugin \"xcb\" in \"\" even though it was found.\n"
              "This application failed to start because no Qt platform plugin could be initialized. Reinstalling "
              "the application may fix this problem.\n\nAvailable platform plugins are: eglfs, offscreen, xcb.\n")
    text = qt_failure(-6, stderr)
    assert text.startswith("Qt aborted (signal 6): qt.qpa.xcb: could not connect to display :0; qt.qpa.plugin:")
    assert "Available platform plugins" not in text
    assert qt_failure(1, "Traceback\nModuleNotFoundError: No module named 'PyQt5'\n") == \
        "exit 1: ModuleNotFoundError: No module named 'PyQt5'"


# ---- waiting, then headless, then back to the window ---------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_asks_every_few_seconds_until_the_display_is_up(monkeypatch):
    monkeypatch.setattr("kiosk.runtime.display.prepare_session_env", lambda: [])
    clock, said, answers = FakeClock(), [], ["no window: not yet"] * 4 + [None]
    probes = []

    def probe():
        probes.append(clock.now)
        return answers.pop(0)

    assert wait_for_window(90, 3, said.append, probe, clock, clock.sleep) is None
    assert probes == [0, 3, 6, 9, 12] and said == ["waiting up to 90 s for the display (no window: not yet)"]


def test_wait_gives_up_after_its_time_with_the_reason(monkeypatch):
    monkeypatch.setattr("kiosk.runtime.display.prepare_session_env", lambda: [])
    clock, said = FakeClock(), []
    assert wait_for_window(10, 3, said.append, lambda: "no window: xcb", clock, clock.sleep) == "no window: xcb"
    assert clock.now == 10
    assert wait_for_window(0, 3, said.append, lambda: "no window: xcb", clock, clock.sleep) == "no window: xcb"
    assert clock.now == 10 and len(said) == 1  # no wait asked: asked once, no "waiting" line


def test_display_watch_asks_at_most_every_interval(monkeypatch):
    monkeypatch.setattr("kiosk.runtime.display.prepare_session_env", lambda: [])
    clock = FakeClock()
    answers = ["no", "no", None]
    watch = DisplayWatch(30, lambda: answers.pop(0), clock)
    seen = []
    for _ in range(100):
        clock.now += 1
        seen.append(watch.reachable())
    assert watch.probes == 3 and seen.index(True) == 89 and seen.count(True) == 1


def test_run_with_an_unreachable_display_waits_then_runs_headless_and_says_why(run_home):
    """The real ``dabai-kiosk run`` process, as systemd starts it, with X not reachable: it neither aborts
    nor loops; it waits, then runs headless with the reason in the journal."""
    home = run_home
    env = _unreachable_display()
    env.update(DABAI_HOME=str(home.root), PYTHONUNBUFFERED="1")
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "kiosk", "run", "--display-wait", "1", "--display-recheck", "0.5",
                           "--duration", "3"], cwd=str(REPO), env=env, capture_output=True, timeout=120)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert "waiting up to 1 s for the display (xcb DISPLAY=:99 unusable: Qt aborted" in err
    lines = [line for line in err.splitlines() if "running headless" in line]
    assert len(lines) == 1 and lines[0].startswith("dabai-kiosk: no window: xcb DISPLAY=:99 unusable: Qt aborted")
    assert "kiosk running (camera" in proc.stdout.decode("utf-8")


def test_headless_fallback_exits_0_once_a_window_can_open(run_home, monkeypatch, capsys):
    """systemd then restarts the kiosk, into the window (Restart=always), instead of it staying headless."""
    from kiosk.runtime import headless

    home = run_home
    monkeypatch.setattr("kiosk.runtime.display.prepare_session_env", lambda: [])
    monkeypatch.setattr(headless.signal, "signal", lambda *args: None)  # leave pytest's Ctrl-C alone
    answers = ["no window: not yet", None]
    watch = DisplayWatch(0.3, lambda: answers.pop(0))
    started = time.monotonic()
    assert headless.run_headless(home, duration=30, display=watch) == 0
    assert time.monotonic() - started < 15 and watch.probes == 2
    assert "a window can open now: stopping for systemd to restart the kiosk into it" in capsys.readouterr().err


def test_doctor_window_check_uses_the_probe(monkeypatch):
    from kiosk.runtime import doctor

    for name, value in _unreachable_display().items():
        monkeypatch.setenv(name, value)
    name, ok, detail = doctor._window()
    assert name == "kiosk window" and ok is False
    assert detail.startswith("xcb DISPLAY=:99 unusable: Qt aborted")
    assert detail.endswith("(dabai-kiosk run falls back to headless)")


def test_a_headless_run_still_finds_the_sound_servers_runtime_dir(monkeypatch):
    import kiosk.runtime.headless
    from kiosk.cli import main

    called = []
    monkeypatch.setattr("kiosk.runtime.display.prepare_session_env", lambda: called.append(1) or ["XDG_RUNTIME_DIR=/x"])
    monkeypatch.setattr(kiosk.runtime.headless, "run_headless", lambda home, duration=0.0, **kw: 0)
    assert main(["run", "--headless"]) == 0 and called == [1]


def test_a_window_really_opens_on_an_x_server_through_the_xcb_plugin(xvfb_env):
    """The xcb platform plugin and the libraries it loads are there: a real X server (Xvfb), not offscreen."""
    assert probe_window(environ=xvfb_env) is None
