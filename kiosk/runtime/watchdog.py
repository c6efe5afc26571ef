"""systemd's notify protocol and watchdog, with the standard library only.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a Unix datagram socket; a leading ``@`` is
Linux's abstract namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC``. The kiosk sends
``READY=1`` once the gate was driven closed, its parts were built and its threads run, ``STATUS=``
lines for ``systemctl status``, ``WATCHDOG=1`` at half the watchdog interval and ``STOPPING=1`` on
the way out. Outside systemd (no ``$NOTIFY_SOCKET``) every call here does nothing.

The pings are not a timer alone: each of the kiosk's threads (capture, vision, the decider; the
window's GUI thread) stamps ``heartbeat = time.monotonic()`` on every turn of its loop, waits
included, and :class:`Watchdog` pings only while every stamp is fresher than that part's limit. A
stuck decider therefore stops the pings; systemd kills the kiosk after ``WatchdogSec`` (the journal
and ``STATUS=`` say which part was stuck), ``ExecStopPost`` drives the relay closed, and
``Restart=always`` starts it again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

log = logging.getLogger(__name__)

# How long each part may go without a heartbeat before the kiosk counts as stuck (seconds). The decider
# turns at least every second (its queue wait is bounded and the ticker posts every 0.2 s); a vision step
# may be slow on its first frame (CUDA and TensorRT set up lazily); a camera open or read can block in
# FFmpeg for up to 30 s on an RTSP stream that went away, and that is a camera fault, not a stuck kiosk.
STALL_LIMITS_S = {"decider": 10.0, "window": 10.0, "vision": 30.0, "capture": 45.0}
DEFAULT_STALL_LIMIT_S = 10.0


class Notifier:
    """Messages to systemd's notify socket; every method is a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address: Optional[str] = None
        if path.startswith("@"):  # the abstract namespace: a leading NUL byte
            self.address = "\0" + path[1:]
        elif path.startswith("/"):
            self.address = path
        self.watchdog_s = _watchdog_interval(env)
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram of ``KEY=value`` lines; True when it was sent. A failure is logged, never raised:
        a supervisor that went away must not take the gate down with it."""
        if self.address is None:
            return False
        message = "\n".join(f.replace("\n", " ") if not f.startswith("STATUS=") else " ".join(f.split())
                            for f in fields).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(message, self.address)
                return True
            except OSError as exc:
                log.warning("systemd notify: cannot send %s: %s", fields[0] if fields else "", exc)
                return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", "MAINPID={}".format(os.getpid()), *(("STATUS=" + status,) if status else ()))

    def status(self, text: str) -> bool:
        return self.send("STATUS=" + text)

    def ping(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", "STATUS=" + status)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> Optional[float]:
    """Seconds between pings: half of ``$WATCHDOG_USEC`` (sd_watchdog_enabled(3)), or None when systemd
    expects none, or expects them from another process (``$WATCHDOG_PID``)."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return usec / 1e6 / 2


# A part's heartbeat: the monotonic time of its last turn, or None while it is not running (being
# reopened after a new configuration): then it is not judged.
Beat = Callable[[], Optional[float]]


def heartbeat_of(get_part: Callable[[], Any]) -> Beat:
    """The ``heartbeat`` attribute of whatever ``get_part()`` returns now (None: not judged)."""

    def beat() -> Optional[float]:
        part = get_part()
        return None if part is None else getattr(part, "heartbeat", None)

    return beat


class Watchdog(threading.Thread):
    """Pings systemd's watchdog while every watched part's heartbeat is fresh; says which part is stuck
    (``STATUS=``, and once in the journal) and stops pinging when one is not."""

    def __init__(self, notifier: Notifier, interval_s: Optional[float] = None,
                 limits: Optional[Dict[str, float]] = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name="watchdog", daemon=True)
        self.notifier = notifier
        self.interval_s = interval_s if interval_s is not None else notifier.watchdog_s
        self.limits = dict(STALL_LIMITS_S if limits is None else limits)
        self.clock = clock
        self.parts: List[Tuple[str, Beat]] = []
        self.pings = 0
        self.stuck: List[str] = []  # what the last check found: "decider (no heartbeat for 12 s)"
        self.stopping = False  # set by stop(): pings go on unjudged while the threads are being joined
        self._halt = threading.Event()

    def watch(self, name: str, beat: Beat) -> None:
        self.parts.append((name, beat))

    def check(self) -> List[str]:
        """The parts whose heartbeat is older than their limit, with how old it is."""
        now = self.clock()
        stuck = []
        for name, beat in self.parts:
            try:
                last = beat()
            except Exception as exc:  # a broken probe is itself a fault worth a restart
                stuck.append("{} (heartbeat unreadable: {})".format(name, exc))
                continue
            if last is None:
                continue
            age = now - last
            if age > self.limits.get(name, DEFAULT_STALL_LIMIT_S):
                stuck.append("{} (no heartbeat for {:.0f} s)".format(name, age))
        return stuck

    def beat_once(self) -> bool:
        """One round: ping when all is well; True when it pinged."""
        stuck = self.check()
        if stuck != self.stuck:
            if stuck:
                text = "stuck: {}; watchdog pings stopped, systemd will restart the kiosk".format(", ".join(stuck))
                log.error("watchdog: %s", text)
                self.notifier.status(text)
            elif self.stuck:
                log.warning("watchdog: every part has a fresh heartbeat again")
                self.notifier.status("running")
            self.stuck = stuck
        if stuck:
            return False
        if self.notifier.ping():
            self.pings += 1
        return True

    def run(self) -> None:
        if self.interval_s is None:
            return
        while not self._halt.is_set():
            if self.stopping:
                self.notifier.ping()
            else:
                self.beat_once()
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        """No more judging: a slow shutdown is ``TimeoutStopSec``'s business, not the watchdog's."""
        self.stopping = True

    def halt(self) -> None:
        self._halt.set()


def supervise(parts: Dict[str, Beat], status: str, notifier: Optional[Notifier] = None) -> Optional[Watchdog]:
    """Tells systemd the kiosk is ready (``READY=1``, ``STATUS=status``) and, when it asked for a
    watchdog, starts the thread that pings it while ``parts`` (name → heartbeat) are alive. None, and
    nothing sent, outside systemd."""
    notifier = notifier or Notifier()
    if not notifier.enabled:
        return None
    watchdog = Watchdog(notifier)
    for name, beat in parts.items():
        watchdog.watch(name, beat)
    notifier.ready(status)
    if watchdog.interval_s is not None:
        watchdog.start()
    return watchdog


def stop_supervision(watchdog: Optional[Watchdog], status: str = "stopping") -> None:
    """``STOPPING=1``; the pings go on, unjudged, while the threads are joined (systemd's stop timeout
    bounds a slow shutdown)."""
    if watchdog is None:
        return
    watchdog.stop()
    watchdog.notifier.stopping(status)
