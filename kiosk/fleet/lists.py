"""The community's signed lists, from the office to every kiosk (issue 14 item 1, the revocation list so far).

The office publishes the revocation list file exactly as signed (:mod:`kiosk.store.revocations`), retained, on
``dabai/C/lists/revocations``: a kiosk that connects later gets the newest at once. The kiosk hands every message to
:func:`kiosk.store.revocations.apply_list`, which checks the community's signature and refuses a version older than
one it accepted (a replay) or a different list under an accepted version. A refused message changes nothing, is
counted and logged; the kiosk keeps deciding on what it holds, with or without a broker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from kiosk.config import Home
from kiosk.fleet.broker import Fleet
from kiosk.fleet.logsync import refused

log = logging.getLogger(__name__)

REVOCATIONS = "revocations"


def publish_revocations(client: Any, fleet: Fleet, home: Home) -> int:
    """Publish the office's current signed revocation list (retained); returns its version."""
    from kiosk.store.passes import load_public_key
    from kiosk.store.revocations import load_list

    data = home.revocations.read_bytes()
    version = load_list(home, load_public_key(home.public_key)).version  # never publish a list this home refuses
    client.publish(fleet.topic("lists", REVOCATIONS), data, qos=1, retain=True).wait_for_publish(10)
    return version


class ListFollower:
    """The kiosk's side: applies each signed list it receives, refuses and logs the rest."""

    def __init__(self, fleet: Fleet, client: Any, home: Home,
                 on_applied: Optional[Callable[[str, int], None]] = None) -> None:
        self.fleet, self.client, self.home = fleet, client, home
        self.on_applied = on_applied
        self.applied: List[Tuple[str, int, float]] = []  # (list, version, when)
        self.refused: List[Tuple[str, str]] = []  # (list, why)
        self._lock = threading.Lock()
        client.on_connect = self._on_connect
        client.on_message = self._on_message

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if not refused(rc):
            client.subscribe(self.fleet.topic("lists", "#"), qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        from kiosk.store.revocations import RevocationError, apply_list

        name = message.topic.rsplit("/", 1)[-1]
        if name != REVOCATIONS:
            with self._lock:
                self.refused.append((name, "unknown list"))
            log.warning("fleet: ignored a message on %s: not a list this kiosk knows", message.topic)
            return
        try:
            accepted = apply_list(self.home, bytes(message.payload))
        except (RevocationError, ValueError, OSError) as exc:
            with self._lock:
                self.refused.append((name, str(exc)))
            log.warning("fleet: refused the %s list from the broker: %s", name, exc)
            return
        with self._lock:
            self.applied.append((name, accepted.version, time.time()))
        log.info("fleet: %s list version %d applied", name, accepted.version)
        if self.on_applied is not None:
            self.on_applied(name, accepted.version)
