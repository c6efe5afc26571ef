"""Restarting the kiosk program, rebooting and powering off the device: the operator screen's 设备管理.

The operator screen is made by the app and cannot reach it, so the app installs a restart handler here
(:func:`set_restart_handler`) and the System page calls :func:`request_restart`; the app then stops the
kiosk as it does on any exit (relay closed, access log flushed) and :func:`restart_after_exit` brings it
back: under systemd by exiting (the unit's ``Restart=always`` restarts it on any exit, status 0 too), else by
re-executing the same command line. Reboot and power-off are ``systemctl reboot`` / ``systemctl poweroff``:
logind asks polkit, and the installer grants the kiosk user those actions (``kiosk/deploy/plan.py``).
Commands go through a runner ``argv -> (exit status, output)`` so that tests never reboot anything.

No Qt here: the pieces are plain functions the app and the page call.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

Runner = Callable[[List[str]], Tuple[int, str]]

REBOOT = ("systemctl", "reboot")
POWER_OFF = ("systemctl", "poweroff")
INSTALL_FIX = "需要安装程序授予权限：sudo make install"
# What systemctl and logind say when polkit refuses (systemd 245-255, Ubuntu 20.04-24.04).
DENIED = ("access denied", "interactive authentication required", "not authorized", "permission denied",
          "authentication is required", "org.freedesktop.dbus.error.accessdenied")
NOT_FOUND = 127  # the shell's "command not found", also when systemctl cannot be started at all


@dataclass(frozen=True)
class PowerResult:
    """What a power action did: ``message`` for the operator (Chinese first), ``detail`` for the Python log."""

    ok: bool
    message: str
    detail: str = ""
    reason: str = ""  # for the access log when it failed: unavailable, not_permitted, no_systemctl, failed


def run_command(argv: List[str], timeout_s: float = 30.0) -> Tuple[int, str]:
    """Runs a command without a terminal; (exit status, its output). 127 when it cannot be started."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        return NOT_FOUND, str(exc)
    except (OSError, subprocess.SubprocessError) as exc:
        return 1, "{}: {}".format(type(exc).__name__, exc)
    return done.returncode, done.stdout or ""


# ---- restarting the program ---------------------------------------------------------------------------

_handler: Optional[Callable[[], None]] = None
_lock = threading.Lock()


def set_restart_handler(handler: Optional[Callable[[], None]]) -> None:
    """The app's way to stop itself for a restart (GUI thread); None when the app ends."""
    global _handler
    with _lock:
        _handler = handler


def clear_restart_handler(handler: Callable[[], None]) -> None:
    """Forget ``handler`` when it is still the one installed (its operator screen is gone)."""
    global _handler
    with _lock:
        if _handler == handler:
            _handler = None


def restart_available() -> bool:
    """Whether a running app listens for :func:`request_restart` (not in the screenshots or a bare screen)."""
    with _lock:
        return _handler is not None


def request_restart() -> PowerResult:
    """Ask the running app to stop cleanly and start again (the System page's 重启程序)."""
    with _lock:
        handler = _handler
    if handler is None:
        return PowerResult(False, "本程序不能自行重启：请退出后重新启动。\nThis program cannot restart itself here: "
                                  "quit and start it again.", "no restart handler installed", "unavailable")
    handler()
    return PowerResult(True, "正在重启程序… Restarting the kiosk program…")


def under_systemd(environ: Mapping[str, str] = os.environ) -> bool:
    """Started by systemd (a service sets INVOCATION_ID, a Type=notify one NOTIFY_SOCKET too)."""
    return bool(environ.get("INVOCATION_ID") or environ.get("NOTIFY_SOCKET"))


def restart_argv(argv: Optional[Sequence[str]] = None, executable: Optional[str] = None,
                 main_spec: Optional[str] = None) -> List[str]:
    """This process's command line again: ``python -m kiosk …`` stays ``-m`` (its ``__main__.py`` alone would
    not find the package), the ``dabai-kiosk`` script is run by the same Python."""
    argv = list(sys.argv if argv is None else argv)
    executable = executable or sys.executable
    if main_spec is None:
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        main_spec = getattr(spec, "name", None) or ""
    if main_spec:
        package = main_spec[:-len(".__main__")] if main_spec.endswith(".__main__") else main_spec
        return [executable, "-m", package] + argv[1:]
    return [executable] + argv


def reexec(argv: Optional[List[str]] = None, execv: Callable[[str, List[str]], None] = os.execv) -> None:
    """Replace this process by a fresh start of the same command line, after the exit handlers have run as at a
    normal exit (they close the relay again). Returns only when the exec failed (OSError)."""
    argv = argv or restart_argv()
    log.info("restarting: %s", " ".join(argv))
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython: what a normal exit runs
    if run_exit_handlers is not None:
        run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    execv(argv[0], argv)


def restart_after_exit(code: int, environ: Mapping[str, str] = os.environ,
                       execv: Callable[[str, List[str]], None] = os.execv) -> int:
    """After the app has stopped for a restart: under systemd return ``code`` (the process exits and
    ``Restart=always`` starts it again after ``RestartSec``), else start the same command line in this process.
    Returns the exit status to use when it did not re-execute."""
    if under_systemd(environ):
        log.info("exiting with status %d for systemd to restart the kiosk", code)
        return code
    try:
        reexec(execv=execv)
    except OSError as exc:
        log.error("cannot restart the kiosk program: %s", exc)
    return code


# ---- rebooting and powering off ----------------------------------------------------------------------------


def _systemctl(argv: Sequence[str], zh: str, en: str, runner: Optional[Runner]) -> PowerResult:
    run = runner if runner is not None else run_command  # looked up now: tests replace run_command
    status, output = run(list(argv))
    detail = "{} exited with status {}: {}".format(" ".join(argv), status, " ".join(output.split())[:500])
    if status == 0:
        return PowerResult(True, "正在{}… The device is going to {}…".format(zh, en), detail)
    log.error("operator %s failed: %s", en, detail)
    text = output.lower()
    if status == NOT_FOUND or "no such file" in text:
        return PowerResult(False, "无法{}：本机没有 systemctl。请用电源按钮操作。\nCannot {}: this system has no "
                                  "systemctl; use the power button.".format(zh, en), detail, "no_systemctl")
    if any(word in text for word in DENIED):
        return PowerResult(False, "没有{}的权限。{}\nNot permitted to {}: run the installer (sudo make install) "
                                  "to allow it.".format(zh, INSTALL_FIX, en), detail, "not_permitted")
    return PowerResult(False, "{}失败（详情已写入系统日志）。请稍后再试，或用电源按钮操作。\n{} failed (details in "
                              "the log); try again later or use the power button.".format(zh, en.capitalize()), detail,
                       "failed")


def reboot(runner: Optional[Runner] = None) -> PowerResult:
    """``systemctl reboot``: every service stops as at a shutdown (the kiosk closes its relay), then the reboot."""
    return _systemctl(REBOOT, "重启设备", "reboot", runner)


def power_off(runner: Optional[Runner] = None) -> PowerResult:
    """``systemctl poweroff``: the kiosk stops as at a shutdown and the device powers off."""
    return _systemctl(POWER_OFF, "关机", "power off", runner)
