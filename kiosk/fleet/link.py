"""A kiosk's one connection to its community's broker: the log goes up, the lists come down, a heartbeat says how it is.

:class:`KioskLink` shares one MQTT client between the log's :class:`~kiosk.fleet.logsync.Uplink`, the lists'
:class:`~kiosk.fleet.lists.ListFollower` and a status message (retained, on ``dabai/C/status/KIOSK``) that tells the
office the versions this kiosk holds, how far its log reached the office and what it refused. It runs in one thread
at the edge of the kiosk; the gate decides on what the kiosk holds whether the broker is there or not.

The last time the broker answered is kept in ``state/fleet-contact.json``, so ``doctor`` and the operator screen (other
processes) can say when a kiosk has been out of touch for longer than ``[fleet] out_of_touch_s``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from kiosk.config import FleetConfig, Home, atomic_write
from kiosk.fleet.broker import OFFICE, Fleet, FleetError, load_fleet, member_files

log = logging.getLogger(__name__)

CONTACT_FILE = "fleet-contact.json"
UPLINK_FILE = "fleet-uplink.json"


def bundle_of(home: Home, config: FleetConfig) -> Optional[Path]:
    """This kiosk's member bundle, or None for a kiosk on its own (no bundle configured or installed)."""
    if config.bundle:
        return Path(config.bundle).expanduser()
    return home.fleet if (home.fleet / "fleet.json").exists() else None


def join(home: Home, bundle: Path) -> str:
    """Install a kiosk's bundle in its data home, and the community's public key that came with it; the kiosk's name.
    A kiosk that holds another community's key is refused: its passes would all stop working."""
    name = member_files(bundle)[0]
    if name == OFFICE:
        raise FleetError("{} is the office's bundle: a kiosk joins with its own (fleet add-kiosk NAME)".format(bundle))
    pub = bundle / "community.pub"
    if home.public_key.exists() and pub.exists() and home.public_key.read_bytes() != pub.read_bytes():
        raise FleetError("{} holds another community key than the office's: move it away first if this kiosk "
                         "changes community".format(home.public_key))
    if home.fleet.resolve() != bundle.resolve():
        if home.fleet.exists():
            shutil.rmtree(str(home.fleet))
        shutil.copytree(str(bundle), str(home.fleet))
        os.chmod(str(home.fleet), 0o700)
    if pub.exists() and not home.public_key.exists():
        home.keys.mkdir(parents=True, exist_ok=True)
        shutil.copy(str(pub), str(home.public_key))
    return name


def read_contact(home: Home) -> Dict[str, Any]:
    """``{"kiosk", "community", "last_contact" (unix s or None), "started"}``; {} when this kiosk never ran a link."""
    try:
        data = json.loads((home.state / CONTACT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def out_of_touch(home: Home, config: FleetConfig, now: Optional[float] = None) -> Optional[str]:
    """Why this kiosk is out of touch with its office (in words), or None: in touch, not in a fleet, or the office's
    own machine (its bundle is the office's: it runs no kiosk link)."""
    bundle = bundle_of(home, config)
    if bundle is None:
        return None
    try:
        if member_files(bundle)[0] == OFFICE:
            return None
    except FleetError:
        pass  # a broken bundle: the kiosk never reached the broker either
    now = time.time() if now is None else now
    contact = read_contact(home)
    if contact.get("denied"):
        return str(contact["denied"])
    last = contact.get("last_contact")
    if isinstance(last, (int, float)):
        if now - last <= config.out_of_touch_s:
            return None
        return "no contact with the office's broker for {} (since {})".format(
            _span(now - last), time.strftime("%Y-%m-%d %H:%M", time.localtime(last)))
    started = contact.get("started")
    if isinstance(started, (int, float)) and now - started <= config.out_of_touch_s:
        return None  # just started: give it the configured time to connect
    return "never reached the office's broker (is the kiosk running, the broker up, the bundle right?)"


def _span(seconds: float) -> str:
    if seconds < 120:
        return "{:.0f} s".format(seconds)
    if seconds < 7200:
        return "{:.0f} min".format(seconds / 60)
    if seconds < 172800:
        return "{:.1f} h".format(seconds / 3600)
    return "{:.1f} days".format(seconds / 86400)


class KioskLink:
    """The kiosk's side of the fleet. ``access_log``: the kiosk's :class:`~kiosk.store.accesslog.AccessLog`;
    ``db``: its database (the registry is replaced from the office's snapshots); ``on_applied(list, version)`` runs
    in the network thread after each list is applied (the policy: the running kiosk takes the new config)."""

    def __init__(self, home: Home, bundle: Path, access_log: Any, db: Any, config: FleetConfig,
                 on_applied: Optional[Callable[[str, int], None]] = None,
                 on_refused: Optional[Callable[[str, str], None]] = None) -> None:
        from kiosk.fleet.lists import ListFollower
        from kiosk.fleet.logsync import Uplink, connect_client

        self.home, self.config = home, config
        self.name = member_files(bundle)[0]
        self.fleet: Fleet = load_fleet(bundle)
        self.access_log = access_log
        self.client = connect_client(bundle, self.fleet, self.name)
        self.uplink = Uplink(self.name, self.fleet, self.client, access_log.chained_after, home.state / UPLINK_FILE)
        self._on_applied = on_applied
        self.follower = ListFollower(self.fleet, self.client, home, db, on_applied=self._applied,
                                     on_refused=on_refused)
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.started = time.time()
        try:  # the key the kiosk signs its log's checkpoints with: the office checks them (kiosk.fleet.office)
            self.kiosk_key: Optional[str] = (home.keys / "kiosk.pub").read_text(encoding="ascii")
        except (OSError, ValueError):
            self.kiosk_key = None
        self.last_contact: Optional[float] = read_contact(home).get("last_contact")
        self.denied: Optional[str] = None  # why the broker refused this kiosk's subscription
        self._contact_written = 0.0
        self._status_due = 0.0
        self._write_contact(force=True)

    # ---- contact -------------------------------------------------------------------------------

    def _touch(self) -> None:
        self.last_contact = time.time()

    def _on_publish(self, *args: Any) -> None:  # the broker acknowledged one of our messages
        self._touch()

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, codes: Any = (), props: Any = None) -> None:
        denied = [c for c in (codes if isinstance(codes, (list, tuple)) else [codes]) if getattr(c, "is_failure", False)]
        if denied:
            # the broker's ACL does not know this kiosk (enrolled after the broker read it?): nothing would arrive
            self.denied = "the broker refused this kiosk's subscription ({}): is it enrolled, and has the broker read " \
                          "its ACL since (restart it, or systemctl reload mosquitto)?".format(denied[0])
            log.error("fleet: %s", self.denied)
            self._write_contact(force=True)
            return
        self.denied = None
        self._touch()

    def _applied(self, name: str, version: int) -> None:
        self._touch()
        self._status_due = 0.0  # tell the office at once (revocation propagation is measured on this)
        if self._on_applied is not None:
            self._on_applied(name, version)

    def _write_contact(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._contact_written < min(10.0, self.config.status_every_s):
            return
        self._contact_written = now
        data = {"kiosk": self.name, "community": self.fleet.community, "started": self.started,
                "last_contact": self.last_contact, "connected": self.uplink.connected, "denied": self.denied}
        try:
            atomic_write(self.home.state / CONTACT_FILE, (json.dumps(data) + "\n").encode("ascii"))
        except OSError as exc:  # a full disk: the heartbeat still goes out
            log.warning("fleet: cannot record the last contact in %s: %s", self.home.state, exc)

    # ---- status ----------------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """What the office's view shows for this kiosk."""
        from kiosk.fleet.documents import DocumentError, held_versions
        from kiosk.store.revocations import RevocationError, seen_version

        try:
            held = held_versions(self.home)
        except DocumentError:
            held = {}
        try:
            revocations = seen_version(self.home)
        except RevocationError:
            revocations = -1
        head = self.access_log.chained_after(self.uplink.acked, 1) if self.access_log is not None else []
        applied = {}
        for name, version, when in self.follower.applied:
            applied[name] = [version, when]
        checkpoint = None
        upto = getattr(self.access_log, "checkpoint_upto", None)
        if upto is not None:
            found = upto(self.uplink.acked)  # one the office can check: it holds every record it covers
            checkpoint = found.to_dict() if found is not None else None
        return {"kiosk": self.name, "ts": time.time(), "started": self.started,
                "versions": {"revocations": revocations, "registry": held.get("registry", 0),
                             "policy": held.get("policy", 0), "key": held.get("key", 0)},
                "applied": applied, "acked": self.uplink.acked, "behind": bool(head),
                "refused": self.follower.refused_count, "kiosk_key": self.kiosk_key, "checkpoint": checkpoint,
                "last_refused": [list(r) for r in list(self.follower.refused)[-3:]]}

    def publish_status(self) -> None:
        payload = json.dumps(self.status(), ensure_ascii=False, separators=(",", ":"))
        self.client.publish(self.fleet.topic("status", self.name), payload, qos=1, retain=True)

    # ---- the thread ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        self.client.loop_start()
        try:
            while not stop.is_set():
                sent = self.uplink.pump()
                now = time.monotonic()
                if self.uplink.connected and now >= self._status_due:
                    self._status_due = now + self.config.status_every_s
                    self.follower.retry()
                    self.publish_status()
                self._write_contact()
                if sent == 0:
                    stop.wait(poll_s)
        finally:
            self._write_contact(force=True)
            self.client.loop_stop()
            self.client.disconnect()

    def start(self) -> "Callable[[], None]":
        """Run in a daemon thread; returns the function that stops it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="fleet-link", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(5.0)

        return halt


def start_link(home: Home, config: FleetConfig, access_log: Any, db: Any,
               on_applied: Optional[Callable[[str, int], None]] = None) -> "Optional[Callable[[], None]]":
    """Start this kiosk's link to its office when it is in a fleet; the function that stops it, or None (no fleet).
    FleetError or ImportError (no paho-mqtt) when a bundle is configured but unusable: the kiosk runs on its own and
    says why."""
    bundle = bundle_of(home, config)
    if bundle is None:
        return None
    try:
        link = KioskLink(home, bundle, access_log, db, config, on_applied)
    except ImportError:
        raise FleetError("paho-mqtt is not installed (pip install 'dabai-kiosk[fleet]'): the kiosk runs on its own") from None
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a missing or damaged certificate or key
        if isinstance(exc, FleetError):
            raise
        raise FleetError("the fleet bundle {} is unusable ({}): the kiosk runs on its own until it is joined again "
                         "with a good bundle (dabai-kiosk fleet join)".format(bundle, exc)) from None
    return link.start()
