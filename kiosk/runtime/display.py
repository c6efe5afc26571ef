"""Whether the kiosk's window can open here, asked without ever risking the kiosk itself.

Under systemd the kiosk starts as a system service before, or without, the kiosk user's desktop
session. Three things it needs from that session are found here rather than written into the unit:

* the X cookie: GDM (JetPack's display manager) keeps it in ``/run/user/UID/gdm/Xauthority``, not in
  ``~/.Xauthority``; Xwayland under mutter and LightDM keep it elsewhere again;
* ``XDG_RUNTIME_DIR`` (``/run/user/UID``), where the sound server's socket lives;
* whether a window really opens. Qt aborts the whole process (SIGABRT, exit 134) when xcb cannot reach
  the display or its plugin's libraries are missing, so the question is asked by a child process that
  creates a QApplication on the configured platform, under a timeout: the kiosk only reads the answer.

``dabai-kiosk run --display-wait N`` asks again every few seconds for up to N seconds, then runs
headless and keeps asking (:class:`DisplayWatch`); once a window can open it exits 0 and systemd starts
it again, into the window.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, MutableMapping, Optional, Tuple

RUN_USER = Path("/run/user")
LIGHTDM = Path("/var/run/lightdm")
X11_SOCKETS = Path("/tmp/.X11-unix")

# What the child runs: PyQt5 and a QApplication on the platform the environment names, nothing of the kiosk.
PROBE = (
    "import sys\n"
    "from PyQt5.QtWidgets import QApplication\n"
    "app = QApplication(['dabai-kiosk-probe'])\n"
    "sys.stdout.write(app.platformName())\n"
)
PROBE_TIMEOUT_S = 15.0
# Lines of Qt's and Xlib's complaints that say why (the rest is Qt's advice on plugins).
TELLING = ("could not connect to display", "could not load the qt platform plugin", "no protocol specified",
           "authorization", "invalid mit-magic-cookie", "cannot open display", "failed to start",
           "error while loading shared libraries", "cannot load library", "modulenotfounderror", "importerror")


def x_authority_candidates(uid: int, home: str, user: str, run_user: Path = RUN_USER,
                           lightdm: Path = LIGHTDM) -> List[Path]:
    """Where the desktop session may keep the X cookie, most likely first (the newest Xwayland one)."""
    runtime = run_user / str(uid)
    mutter = sorted(runtime.glob(".mutter-Xwaylandauth.*"), key=_mtime, reverse=True) if runtime.is_dir() else []
    return [runtime / "gdm" / "Xauthority", Path(home) / ".Xauthority", *mutter, lightdm / user / "xauthority"]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def xauthority_displays(path: Path) -> List[str]:
    """The display numbers an Xauthority file has cookies for (its format: per entry a 16-bit family, then
    address, display number, auth name and auth data, each a 16-bit big-endian length and the bytes)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    numbers: List[str] = []
    at = 0
    while at + 2 <= len(data):
        at += 2  # the family
        fields = []
        for _ in range(4):
            if at + 2 > len(data):
                return numbers
            size = int.from_bytes(data[at:at + 2], "big")
            fields.append(data[at + 2:at + 2 + size])
            at += 2 + size
        number = fields[1].decode("ascii", "replace")
        if number.isdigit() and number not in numbers:
            numbers.append(number)
    return numbers


def session_display(display: str, cookie: Optional[str], sockets: Path = X11_SOCKETS) -> Optional[str]:
    """Another display for the kiosk's session when ``display`` (":0") has no X socket here but the session's
    cookie names exactly one display that has (GDM gives the user's session :1 when a greeter holds :0)."""
    number = display.rpartition(":")[2].split(".")[0]
    if not display.startswith(":") or not number.isdigit() or (sockets / ("X" + number)).exists() or not cookie:
        return None
    live = [n for n in xauthority_displays(Path(cookie)) if (sockets / ("X" + n)).exists()]
    return ":" + live[0] if len(live) == 1 else None


def _account() -> Tuple[int, str, str]:
    uid = os.getuid()
    try:
        entry = pwd.getpwuid(uid)
        return uid, entry.pw_dir, entry.pw_name
    except KeyError:  # no passwd entry (a container): $HOME and $USER are all there is
        return uid, os.environ.get("HOME", "/"), os.environ.get("USER", str(uid))


def prepare_session_env(environ: Optional[MutableMapping[str, str]] = None, run_user: Path = RUN_USER,
                        lightdm: Path = LIGHTDM, account: Optional[Tuple[int, str, str]] = None,
                        sockets: Path = X11_SOCKETS) -> List[str]:
    """Sets ``XAUTHORITY`` when it is unset or names a missing file (and a display is set),
    ``DISPLAY`` when its X socket is missing and the cookie names one display that has one
    (:func:`session_display`), and ``XDG_RUNTIME_DIR`` when it is unset and ``/run/user/UID`` exists.
    Returns what it set, for the log. Called again before every probe: the session may log in after
    the kiosk started."""
    env = os.environ if environ is None else environ
    uid, home, user = account or _account()
    notes = []
    current = env.get("XAUTHORITY", "")
    if env.get("DISPLAY") and not (current and os.path.isfile(current)):
        for candidate in x_authority_candidates(uid, home, user, run_user, lightdm):
            if candidate.is_file():
                if str(candidate) != current:
                    env["XAUTHORITY"] = str(candidate)
                    notes.append("XAUTHORITY={}".format(candidate))
                break
    other = session_display(env.get("DISPLAY", ""), env.get("XAUTHORITY"), sockets)
    if other is not None:
        env["DISPLAY"] = other
        notes.append("DISPLAY={} (the session's cookie names it; {} has no X socket)".format(other, sockets))
    runtime = run_user / str(uid)
    if not env.get("XDG_RUNTIME_DIR") and runtime.is_dir():
        env["XDG_RUNTIME_DIR"] = str(runtime)
        notes.append("XDG_RUNTIME_DIR={}".format(runtime))
    return notes


def probe_window(timeout_s: float = PROBE_TIMEOUT_S, environ: Optional[MutableMapping[str, str]] = None) -> Optional[str]:
    """None when a QApplication can be created here (in a child process, on the platform the environment
    names); else why not, on one line. Never aborts the caller."""
    env = dict(os.environ if environ is None else environ)
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):  # systemd talks to the kiosk, not to the probe
        env.pop(name, None)
    where = "{} {}".format(env.get("QT_QPA_PLATFORM") or "default platform",
                           "DISPLAY=" + env["DISPLAY"] if env.get("DISPLAY") else "").strip()
    try:
        proc = subprocess.run([sys.executable, "-c", PROBE], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "{} did not answer within {:.0f} s".format(where, timeout_s)
    except OSError as exc:
        return "{}: the window probe could not start: {}".format(where, exc)
    if proc.returncode == 0:
        return None
    return "{} unusable: {}".format(where, qt_failure(proc.returncode, proc.stderr.decode("utf-8", "replace")))


def qt_failure(returncode: int, stderr: str) -> str:
    """Qt's reason for not opening a window, from the probe's exit status and stderr, on one line."""
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    telling = [line for line in lines if any(word in line.lower() for word in TELLING)]
    detail = "; ".join(dict.fromkeys(telling or lines[-2:]))[:400]
    how = "Qt aborted (signal {})".format(-returncode) if returncode < 0 else \
        "Qt aborted (exit {})".format(returncode) if returncode == 134 else "exit {}".format(returncode)
    return "{}{}".format(how, ": " + detail if detail else "")


def wait_for_window(wait_s: float, every_s: float = 3.0, say: Callable[[str], None] = print,
                    probe: Callable[[], Optional[str]] = probe_window,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> Optional[str]:
    """None as soon as a window can open; else, after asking every ``every_s`` for up to ``wait_s``
    seconds, why not. Says once that it waits (and on what)."""
    deadline = clock() + max(wait_s, 0.0)
    for note in prepare_session_env():
        say("display: using " + note)
    why = probe()
    if why is not None and wait_s > 0:
        say("waiting up to {:.0f} s for the display ({})".format(wait_s, why))
    while why is not None and clock() < deadline:
        sleep(max(0.0, min(every_s, deadline - clock())))
        for note in prepare_session_env():
            say("display: using " + note)
        why = probe()
    return why


class DisplayWatch:
    """For a kiosk that fell back to headless: asks every ``every_s`` whether a window can open now."""

    def __init__(self, every_s: float = 30.0, probe: Callable[[], Optional[str]] = probe_window,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.probe = probe
        self.clock = clock
        self.next_at = clock() + every_s
        self.probes = 0

    def reachable(self) -> bool:
        """True once a window can open (asked at most every ``every_s``; False in between)."""
        if self.clock() < self.next_at:
            return False
        prepare_session_env()
        self.probes += 1
        why = self.probe()
        self.next_at = self.clock() + self.every_s
        return why is None
