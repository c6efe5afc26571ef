"""The community's signed lists, from the office to every kiosk (issue 14 item 1).

The office publishes, retained, on ``dabai/C/lists/NAME``:

* ``revocations``: the revocation list file exactly as signed (:mod:`kiosk.store.revocations`);
* ``registry``: the snapshot of residents and passes, and ``registry-change``, not retained, the rows changed since
  the version before (:mod:`kiosk.fleet.documents`);
* ``policy`` and ``key``: the gate policy and the community key's rotation.

A kiosk that connects later gets the newest of each at once. :class:`ListFollower` hands every message to
:func:`kiosk.store.revocations.apply_list` or :func:`kiosk.fleet.documents.apply_document`, which check the community's
signature and refuse an older version (a replay) or a different document under an accepted version. A refused
message changes nothing, is counted and logged; the kiosk keeps deciding on what it holds, with or without a broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from kiosk.config import Home
from kiosk.fleet.broker import Fleet
from kiosk.fleet.logsync import when_connected

log = logging.getLogger(__name__)

REVOCATIONS = "revocations"
LISTS = (REVOCATIONS, "registry", "registry-change", "policy", "key")
RETAINED = (REVOCATIONS, "registry", "policy", "key")


def publish_list(client: Any, fleet: Fleet, name: str, data: bytes, timeout_s: float = 10.0) -> bool:
    """Publish one signed list or document (retained unless it is a change); whether the broker took it in time."""
    info = client.publish(fleet.topic("lists", name), data, qos=1, retain=name in RETAINED)
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError):  # not connected: paho says so at once
        return False
    return info.is_published()


def publish_revocations(client: Any, fleet: Fleet, home: Home) -> Optional[int]:
    """Publish the office's current signed revocation list (retained); its version, or None when the broker did not
    take it. RevocationError (or KeyFileError) when this home itself would refuse the list: it is never published."""
    from kiosk.store.passes import load_public_key
    from kiosk.store.revocations import RevocationError, parse_list, seen_version

    data = home.revocations.read_bytes()
    listed = parse_list(data, load_public_key(home.public_key))  # exactly the bytes that go out
    if listed.version < seen_version(home):
        raise RevocationError("the revocation list is version {}, older than version {} accepted here".format(
            listed.version, seen_version(home)))
    return listed.version if publish_list(client, fleet, REVOCATIONS, data) else None


class ListFollower:
    """The kiosk's side: applies each signed list it receives, refuses and logs the rest. ``db``: the kiosk's
    database, for the registry (None: registry documents are refused)."""

    keep = 50  # refusals remembered, newest last

    def __init__(self, fleet: Fleet, client: Any, home: Home, db: Any = None,
                 on_applied: Optional[Callable[[str, int], None]] = None,
                 on_refused: Optional[Callable[[str, str], None]] = None) -> None:
        self.fleet, self.client, self.home, self.db = fleet, client, home, db
        self.on_applied, self.on_refused = on_applied, on_refused
        self.applied: List[Tuple[str, int, float]] = []  # (list, version, when)
        self.refused: Deque[Tuple[str, str, float]] = deque(maxlen=self.keep)  # (list, why, when)
        self.refused_count = 0
        self.unapplied: Dict[str, bytes] = {}  # genuine lists that could not be applied here yet, by name
        self.stale_count = 0  # already held or older: a retained copy again is normal, a replay is not
        self._lock = threading.Lock()
        when_connected(client, self._on_connect)
        client.message_callback_add(self.fleet.topic("lists", "#"), self._on_message)

    def _on_connect(self, client: Any) -> None:
        client.subscribe(self.fleet.topic("lists", "#"), qos=1)

    def _refuse(self, name: str, why: str) -> None:
        with self._lock:
            self.refused.append((name, why, time.time()))
            self.refused_count += 1
        log.warning("fleet: refused the %s from the broker: %s", name, why)
        if self.on_refused is not None:
            self.on_refused(name, why)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self.handle(message.topic.rsplit("/", 1)[-1], bytes(message.payload))
        except Exception:  # a bug here must not stop paho's network thread
            log.exception("fleet: a list message could not be handled")

    def retry(self) -> None:
        """Apply again what could not be applied here before (called on the link's heartbeat)."""
        with self._lock:
            waiting, self.unapplied = self.unapplied, {}
        for name, data in waiting.items():
            self.handle(name, data, retrying=True)

    def handle(self, name: str, data: bytes, retrying: bool = False) -> None:
        from kiosk.fleet.documents import DocumentError, Stale, Unapplied, apply_document
        from kiosk.store.keyring import KeyRing
        from kiosk.store.revocations import RevocationError, apply_list, parse_list, seen_version

        if name not in LISTS:
            self._refuse(name, "not a list this kiosk knows")
            return
        if not data:
            return  # a retained message being cleared
        if not retrying:
            with self._lock:
                self.unapplied.pop(name, None)  # a newer one came: the one waiting is not needed any more
        try:
            if name == REVOCATIONS:
                current = KeyRing(self.home).current()
                listed = parse_list(data, current)
                if listed.version <= seen_version(self.home):
                    if listed.version < seen_version(self.home):
                        raise Stale("version {} is older than version {} held here: refused (a replay?)".format(
                            listed.version, seen_version(self.home)))
                    apply_list(self.home, data, current)  # the same version: refused if it differs
                    raise Stale("version {} is held already".format(listed.version))
                version = apply_list(self.home, data, current).version
            else:
                doc = apply_document(self.home, self.db, data)
                name, version = doc.sequence, doc.version
        except Stale as exc:
            old = "older" in str(exc)
            with self._lock:
                self.stale_count += 1
            if old and not retrying:  # a retry overtaken by a newer version is no replay
                self._refuse(name, str(exc))
            return
        except (Unapplied, OSError) as exc:  # genuine, but not applied here now: kept and tried again
            with self._lock:
                self.unapplied[name] = data
            log.warning("fleet: the %s could not be applied here, tried again shortly: %s", name, exc)
            return
        except (DocumentError, RevocationError, ValueError) as exc:
            self._refuse(name, str(exc))
            return
        with self._lock:
            self.applied.append((name, version, time.time()))
            del self.applied[:-self.keep]
        log.info("fleet: %s version %d applied", name, version)
        if self.on_applied is not None:
            self.on_applied(name, version)
