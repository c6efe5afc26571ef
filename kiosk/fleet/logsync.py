"""A kiosk's access log, streamed to the office: at least once, in order, resumed after any outage, never lost.

The broker's acknowledgement only says the broker has a message, not that the office stored it (an office away for
long enough overflows the broker's queue). So the office acknowledges what it holds itself:

* the kiosk (:class:`Uplink`) publishes each record (QoS 1) to ``dabai/C/log/KIOSK``, oldest first, each carrying
  the sequence number of the record sent before it (``after``), so the office can tell a gap from the end;
* the office (:class:`Collector`) stores it once, keyed by (kiosk, seq), and publishes, retained, to
  ``dabai/C/ack/KIOSK`` the highest seq up to which it holds an unbroken run;
* the kiosk keeps that number (``state/fleet-uplink.json``) and sends again from it after a reconnect or when no
  acknowledgement came for ``resend_s``. Duplicates are expected and dropped by the office's key.

Records stay in the kiosk's database either way: the stream only copies them. The office checks each kiosk's hash
chain over what it holds (:meth:`Collector.verify`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from kiosk.fleet.broker import Fleet, member_files

log = logging.getLogger(__name__)

RECORD_FIELDS = ("uid", "ts", "outcome", "reason", "resident_id", "resident_name", "mask", "pass_reason", "pass_serial",
                 "intent", "gate_opened", "seq", "prev_hash", "hash")


def refused(rc: Any) -> bool:
    """Whether a CONNACK refused the connection (paho 2 gives a ReasonCode, older paho an int)."""
    return bool(getattr(rc, "is_failure", rc != 0))


def connect_client(bundle: Path, fleet: Fleet, client_id: str, clean: bool = True) -> Any:
    """A paho-mqtt client with the member's certificate, connecting in the background (it reconnects by itself)."""
    import paho.mqtt.client as mqtt

    _, ca, cert, key = member_files(bundle)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.reconnect_delay_set(0.2, 2.0)
    client.max_inflight_messages_set(100)
    client.connect_async(fleet.host, fleet.port, keepalive=10)
    return client


def when_connected(client: Any, handler: Callable[[Any], None]) -> None:
    """Call ``handler(client)`` after every accepted (re)connection; several parts (the log's uplink, the lists'
    follower, the office's collector) share one client, each with its own subscriptions."""
    handlers = getattr(client, "_dabai_connected", None)
    if handlers is None:
        handlers = []
        client._dabai_connected = handlers

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
            if refused(rc):
                log.warning("fleet: the broker refused the connection: %s", rc)
                return
            for each in list(handlers):
                each(client)

        client.on_connect = on_connect
    handlers.append(handler)


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(str(tmp), "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(str(tmp), str(path))


class Uplink:
    """Streams ``records_after(seq, limit)`` (the kiosk's :meth:`AccessLog.chained_after`) to the office."""

    def __init__(self, name: str, fleet: Fleet, client: Any, records_after: Callable[[int, int], List[Dict[str, Any]]],
                 state: Path, batch: int = 200, resend_s: float = 5.0) -> None:
        self.name, self.fleet, self.client = name, fleet, client
        self.records_after = records_after
        self.state = state
        self.batch, self.resend_s = batch, resend_s
        self.acked = int(_read_json(state).get("acked", 0))  # the office holds everything up to here
        self.sent = self.acked  # published (maybe not yet stored) up to here
        self.sent_count = 0
        self._lock = threading.Lock()
        self._progress = time.monotonic()
        self._connected = threading.Event()
        when_connected(client, self._on_connect)
        client.on_disconnect = self._on_disconnect
        client.message_callback_add(self.fleet.topic("ack", self.name), self._on_ack)

    def _on_connect(self, client: Any) -> None:
        client.subscribe(self.fleet.topic("ack", self.name), qos=1)
        with self._lock:
            self.sent = self.acked  # whatever was in flight may be lost: from the office's own count again
        self._connected.set()

    def _on_disconnect(self, *args: Any) -> None:
        self._connected.clear()

    def _on_ack(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            acked = int(json.loads(message.payload.decode("utf-8"))["upto"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("fleet: unreadable acknowledgement on %s", message.topic)
            return
        with self._lock:
            if acked > self.acked:
                self.acked = acked
                self._progress = time.monotonic()
                self.sent = max(self.sent, acked)
                try:
                    _write_json(self.state, {"acked": acked})
                except OSError as exc:  # a full disk: kept in memory; after a restart some records go again
                    log.warning("fleet: cannot record the office's acknowledgement in %s: %s", self.state, exc)
            elif acked == self.acked < self.sent and not message.retain:
                # the office says again where it stands (it is back after an outage): what was sent past that
                # was lost with it, so send again now rather than after resend_s
                self.sent = acked
                self._progress = time.monotonic()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def pump(self) -> int:
        """Publish the next batch of records the office does not hold yet; how many were published."""
        if not self._connected.is_set():
            return 0
        with self._lock:
            if self.sent > self.acked and time.monotonic() - self._progress > self.resend_s:
                self.sent = self.acked  # nothing acknowledged for a while: send again from the office's count
                self._progress = time.monotonic()
            after = self.sent
        records = self.records_after(after, self.batch)
        topic = self.fleet.topic("log", self.name)
        for record in records:
            payload = json.dumps({"kiosk": self.name, "after": after, "record": {k: record.get(k) for k in RECORD_FIELDS}},
                                 ensure_ascii=False, separators=(",", ":"))
            if self.client.publish(topic, payload, qos=1).rc != 0:
                break  # not connected any more: the next pump starts from the office's count
            after = int(record["seq"])
            self.sent_count += 1
        with self._lock:
            if records and self.sent < after:
                if self.sent == self.acked:
                    self._progress = time.monotonic()
                self.sent = after
        return len(records)

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        self.client.loop_start()
        try:
            while not stop.is_set():
                if self.pump() == 0:
                    stop.wait(poll_s)
        finally:
            self.client.loop_stop()
            self.client.disconnect()


OFFICE_SCHEMA = """
CREATE TABLE IF NOT EXISTS fleet_log (
    kiosk TEXT NOT NULL, seq INTEGER NOT NULL, after INTEGER NOT NULL, uid TEXT NOT NULL, ts REAL NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL, resident_id INTEGER, resident_name TEXT, mask TEXT, pass_reason TEXT,
    pass_serial INTEGER, intent TEXT, gate_opened INTEGER NOT NULL, prev_hash TEXT, hash TEXT, received_at REAL NOT NULL,
    PRIMARY KEY (kiosk, seq)
);
CREATE TABLE IF NOT EXISTS fleet_kiosks (kiosk TEXT PRIMARY KEY, upto INTEGER NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_status (kiosk TEXT PRIMARY KEY, received_at REAL NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_keys (kiosk TEXT PRIMARY KEY, public_key TEXT NOT NULL, first_seen REAL NOT NULL,
    other TEXT);
CREATE TABLE IF NOT EXISTS fleet_checkpoints (kiosk TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL,
    ts REAL NOT NULL, id TEXT NOT NULL, sig TEXT NOT NULL, PRIMARY KEY (kiosk, seq));
"""


class Collector:
    """The office's side: every kiosk's records into one SQLite database, once each, acknowledged per kiosk."""

    def __init__(self, fleet: Fleet, client: Any, database: Path, ack_every_s: float = 0.2) -> None:
        self.fleet, self.client, self.path = fleet, client, database
        self.db = sqlite3.connect(str(database), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(OFFICE_SCHEMA)
        self._lock = threading.Lock()
        self.received = 0
        self.duplicates = 0
        self.refused = 0
        self._closed = False
        self.upto: Dict[str, int] = {r[0]: int(r[1]) for r in self.db.execute("SELECT kiosk, upto FROM fleet_kiosks")}
        self._dirty: Dict[str, int] = {}
        self.ack_every_s = ack_every_s
        when_connected(client, self._on_connect)
        client.message_callback_add(self.fleet.topic("log", "+"), self._on_record)

    def _on_connect(self, client: Any) -> None:
        client.subscribe(self.fleet.topic("log", "+"), qos=1)
        with self._lock:
            self._dirty.update(self.upto)  # tell every kiosk again where the office stands

    def _on_record(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._store(message)
        except sqlite3.Error as exc:  # a full or damaged disk at the office: not stored, so not acknowledged
            log.error("office: cannot store a log record from %s: %s", message.topic, exc)

    def _store(self, message: Any) -> None:
        kiosk = message.topic.rsplit("/", 1)[-1]  # the broker's ACL: only that kiosk writes its topic
        try:
            data = json.loads(message.payload.decode("utf-8"))
            record, after = data["record"], int(data["after"])
            seq = int(record["seq"])
            if data.get("kiosk") != kiosk or seq <= after:
                raise ValueError("kiosk or sequence does not match the topic")
            values = [kiosk, seq, after] + [record.get(k) for k in RECORD_FIELDS if k != "seq"] + [time.time()]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            with self._lock:
                self.refused += 1
            log.warning("office: refused a log message on %s: %s", message.topic, exc)
            return
        with self._lock:
            if self._closed:  # stopping: not stored, so not acknowledged, so the kiosk sends it again later
                return
            self.received += 1
            cur = self.db.execute("INSERT OR IGNORE INTO fleet_log (kiosk, seq, after, uid, ts, outcome, reason, "
                                  "resident_id, resident_name, mask, pass_reason, pass_serial, intent, gate_opened, "
                                  "prev_hash, hash, received_at) VALUES ({})".format(", ".join("?" * 17)), values)
            if cur.rowcount == 0:
                self.duplicates += 1
            upto = self.upto.get(kiosk, 0)
            if after <= upto < seq:  # it continues the unbroken run: follow the run as far as it now goes
                upto = seq
                while True:
                    row = self.db.execute("SELECT seq FROM fleet_log WHERE kiosk = ? AND after = ?", (kiosk, upto)).fetchone()
                    if row is None:
                        break
                    upto = int(row[0])
                self.upto[kiosk] = upto
                self.db.execute("INSERT INTO fleet_kiosks (kiosk, upto, last_seen) VALUES (?, ?, ?) ON CONFLICT(kiosk) "
                                "DO UPDATE SET upto = excluded.upto, last_seen = excluded.last_seen", (kiosk, upto, time.time()))
                self._dirty[kiosk] = upto

    def record_status(self, kiosk: str, status: Dict[str, Any]) -> None:
        """Keep a kiosk's latest heartbeat (what the office's view shows)."""
        with self._lock:
            if self._closed:
                return
            try:
                self.db.execute("INSERT INTO fleet_status (kiosk, received_at, status) VALUES (?, ?, ?) ON CONFLICT"
                                "(kiosk) DO UPDATE SET received_at = excluded.received_at, status = excluded.status",
                                (kiosk, time.time(), json.dumps(status, ensure_ascii=False)))
                self._record_signing(kiosk, status.get("kiosk_key"), status.get("checkpoint"))
            except sqlite3.Error as exc:
                log.error("office: cannot store the status of %s: %s", kiosk, exc)

    def _record_signing(self, kiosk: str, key: Any, checkpoint: Any) -> None:
        """The kiosk's checkpoint key, pinned the first time it is seen (another one later is kept aside and reported
        by ``office log verify``), and its signed checkpoints, checked there against the records."""
        if isinstance(key, str) and len(key) < 1000:
            self.db.execute("INSERT OR IGNORE INTO fleet_keys (kiosk, public_key, first_seen) VALUES (?, ?, ?)",
                            (kiosk, key, time.time()))
            self.db.execute("UPDATE fleet_keys SET other = ? WHERE kiosk = ? AND public_key != ?", (key, kiosk, key))
        if isinstance(checkpoint, dict):
            try:
                values = (kiosk, int(checkpoint["seq"]), str(checkpoint["hash"]), float(checkpoint["ts"]),
                          str(checkpoint["kiosk"]), str(checkpoint["sig"]))
            except (KeyError, TypeError, ValueError):
                log.warning("office: an unreadable checkpoint from %s", kiosk)
                return
            self.db.execute("INSERT OR IGNORE INTO fleet_checkpoints (kiosk, seq, hash, ts, id, sig) "
                            "VALUES (?, ?, ?, ?, ?, ?)", values)

    def acknowledge(self) -> None:
        """Publish (retained) each kiosk's unbroken run that grew since the last call."""
        with self._lock:
            dirty, self._dirty = self._dirty, {}
        for kiosk, upto in dirty.items():
            self.client.publish(self.fleet.topic("ack", kiosk), json.dumps({"upto": upto}), qos=1, retain=True)

    def run(self, stop: threading.Event) -> None:
        self.client.loop_start()
        try:
            while not stop.wait(self.ack_every_s):
                self.acknowledge()
        finally:
            self.acknowledge()
            self.client.loop_stop()
            self.client.disconnect()

    def count(self, kiosk: Optional[str] = None) -> int:
        with self._lock:
            if kiosk is None:
                return int(self.db.execute("SELECT COUNT(*) FROM fleet_log").fetchone()[0])
            return int(self.db.execute("SELECT COUNT(*) FROM fleet_log WHERE kiosk = ?", (kiosk,)).fetchone()[0])

    def verify(self, kiosk: str) -> Dict[str, Any]:
        """A kiosk's log as the office holds it, checked (:func:`kiosk.fleet.office.verify_all`)."""
        from kiosk.fleet.office import verify_all

        return verify_all(self.path, kiosk)[0]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.db.close()
