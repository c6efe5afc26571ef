"""The property office: the one machine that holds the community's private key, publishing to every gate and
collecting what every gate decided.

:class:`Office` runs on the issuing station's data home (where residents are added and passes issued, with the
operator screen or the command line) and its ``office`` member bundle. Four times a second it looks for what changed
there and publishes, signed and versioned (:mod:`kiosk.fleet.documents`):

* the revocation list, whenever its file changes;
* the registry: a change message (the rows that differ) and the new snapshot, retained;
* the gate policy (the ``[policy]`` section of its config);
* the community key's rotation (:func:`rotate_key`), which re-signs everything else with the new key.

What it last published is kept in ``state/office/`` and published again, byte for byte, after every reconnection (a
broker that lost its storage is refilled). The kiosks' log records and heartbeats go into ``office.db`` in the data
home (:class:`~kiosk.fleet.logsync.Collector`); :func:`overview` and :func:`verify_all` read it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from kiosk.config import Home, atomic_write
from kiosk.fleet.broker import OFFICE, FleetError, load_fleet, member_files
from kiosk.fleet.documents import Document, parse_document, policy_body, registry_change, registry_snapshot, sign_document
from kiosk.fleet.lists import REVOCATIONS, publish_list, publish_revocations
from kiosk.fleet.logsync import Collector, connect_client, when_connected
from kiosk.store.passes import KeyFileError
from kiosk.store.revocations import RevocationError

log = logging.getLogger(__name__)

DOCUMENTS = ("key", "registry", "policy")  # published in this order after a reconnection: the key first


def office_database(home: Home) -> Path:
    return home.root / "office.db"


def published_path(home: Home, kind: str) -> Path:
    return home.state / "office" / "{}.json".format(kind)


def _stamp(path: Path) -> Any:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Office:
    """Publishes the community's lists and collects every kiosk's log; ``run`` until ``stop`` is set."""

    snapshot_every_s = 10.0

    def __init__(self, home: Home, bundle: Path, poll_s: float = 0.25) -> None:
        from kiosk.store.passes import load_private_key

        name = member_files(bundle)[0]
        if name != OFFICE:
            raise FleetError("{} is kiosk {}'s bundle, not the office's (members/office in the fleet folder)".format(
                bundle, name))
        self.home, self.poll_s = home, poll_s
        self.key = load_private_key(home.private_key)  # KeyFileError: this is not the issuing station
        self.fleet = load_fleet(bundle)
        # a persistent session: while the office is away the broker keeps the kiosks' records for it
        self.client = connect_client(bundle, self.fleet, "office", clean=False)
        self.collector = Collector(self.fleet, self.client, office_database(home))
        when_connected(self.client, self._on_connect)
        self.client.message_callback_add(self.fleet.topic("status", "+"), self._on_status)
        self.published_at: Dict[str, float] = {}  # list → when its newest version was published (benchmarks)
        self._sent: Dict[str, Any] = {}  # list → what was published on this connection
        self._db: Any = None
        self._snapshot_sent = 0.0  # monotonic time the registry's snapshot was last published
        self._key_stamp = _stamp(home.private_key)  # of the key in self.key

    # ---- the broker ------------------------------------------------------------------------------

    def _on_connect(self, client: Any) -> None:
        client.subscribe(self.fleet.topic("status", "+"), qos=1)
        self._sent = {}  # publish everything again on this connection (one assignment: the loop sees old or new)

    def _on_status(self, client: Any, userdata: Any, message: Any) -> None:
        kiosk = message.topic.rsplit("/", 1)[-1]
        try:
            status = json.loads(message.payload.decode("utf-8"))
            if not isinstance(status, dict) or status.get("kiosk") != kiosk:
                raise ValueError("not this kiosk's status")
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("office: unreadable status on %s: %s", message.topic, exc)
            return
        self.collector.record_status(kiosk, status)

    # ---- publishing ------------------------------------------------------------------------------

    def _database(self) -> Any:
        from kiosk.store.db import Database

        if self._db is None:
            self._db = Database(self.home.database)
        return self._db

    def _held(self, kind: str) -> Optional[Document]:
        from kiosk.store.keyring import KeyRing

        path = published_path(self.home, kind)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        ring = KeyRing(self.home)
        try:
            return parse_document(data, ring.current())
        except ValueError:
            previous = None
            try:
                previous = ring.previous_key(bytes.fromhex(json.loads(data.decode("utf-8"))["key_id"]))
            except (ValueError, KeyError, TypeError):
                pass
            if previous is None:
                raise
            return parse_document(data, previous)  # signed before a rotation: re-signed below

    def _next(self, kind: str, body: Dict[str, Any], held: Optional[Document] = None) -> Optional[bytes]:
        """The signed next version of ``kind`` when ``body`` differs from what was published (or the key changed)."""
        from kiosk.store.passes import key_id

        held = held if held is not None else self._held(kind)
        if held is not None and held.body == body and held.key_id == key_id(self.key.public_key()):
            return None
        data = sign_document(self.key, kind, (held.version if held else 0) + 1, body)
        return data

    def publish_pending(self) -> List[str]:
        """Sign and publish what changed since the last call (and, after a reconnection, everything); the lists
        published. Nothing is published while the broker is away: it is all sent when it is back."""
        from kiosk.store.passes import load_private_key

        if not self.client.is_connected():
            return []
        key_stamp = _stamp(self.home.private_key)
        if key_stamp != self._key_stamp:  # a rotation by another process: every document is signed again
            self.key, self._key_stamp = load_private_key(self.home.private_key), key_stamp
        done: List[str] = []
        key_doc = published_path(self.home, "key")
        rotating = (self.home.keys / "community.key.next").exists()  # rotate_key has not finished: not yet
        if key_doc.exists() and not rotating and self._sent.get("key") != _stamp(key_doc):
            if publish_list(self.client, self.fleet, "key", key_doc.read_bytes()):
                self._sent["key"] = _stamp(key_doc)
                done.append("key")
        listed = _stamp(self.home.revocations)
        stamp = (listed, _stamp(self.home.public_key))  # a list refused under one key may be good under the next
        if listed is not None and self._sent.get(REVOCATIONS) != stamp:
            try:
                published = publish_revocations(self.client, self.fleet, self.home) is not None
            except (RevocationError, KeyFileError) as exc:  # not until the file changes again
                log.error("office: the revocation list is not published: %s", exc)
                self._sent[REVOCATIONS] = stamp
                published = False
            if published:
                self._sent[REVOCATIONS] = stamp
                self.published_at[REVOCATIONS] = time.time()
                done.append(REVOCATIONS)
        done += self._publish_registry()
        inputs = (_stamp(self.home.config), key_stamp)
        if self._sent.get("policy-inputs") != inputs:  # the config or the key changed (or a reconnection)
            policy = self._next("policy", policy_body(self.home))
            if policy is not None:
                atomic_write(published_path(self.home, "policy"), policy)
            self._sent["policy-inputs"] = inputs
        path = published_path(self.home, "policy")
        if path.exists() and self._sent.get("policy") != _stamp(path):
            if publish_list(self.client, self.fleet, "policy", path.read_bytes()):
                self._sent["policy"] = _stamp(path)
                done.append("policy")
        return done

    def _publish_registry(self) -> List[str]:
        """A change of residents or passes goes out at once as the rows that differ; the whole snapshot (retained,
        for kiosks that missed a change or join later) at most every ``snapshot_every_s``, so a morning of passes
        issued at the front desk does not send the whole registry to every gate each time."""
        from kiosk.store.passes import key_id

        db = self._database()
        inputs = (db.query("PRAGMA data_version")[0][0], self._key_stamp)  # the data, or the key, changed
        path = published_path(self.home, "registry")
        if self._sent.get("registry-inputs") != inputs or not path.exists():
            body = registry_snapshot(db)
            held = self._held("registry")
            data = self._next("registry", body, held)
            if data is not None:
                atomic_write(path, data)
                if held is not None and held.key_id == key_id(self.key.public_key()):
                    publish_list(self.client, self.fleet, "registry-change", sign_document(
                        self.key, "registry-change", held.version + 1, registry_change(held.body, body, held.version)))
            self._sent["registry-inputs"] = inputs
        due = time.monotonic() - self._snapshot_sent >= self.snapshot_every_s or "registry" not in self._sent
        if path.exists() and self._sent.get("registry") != _stamp(path) and due:
            if publish_list(self.client, self.fleet, "registry", path.read_bytes()):
                self._sent["registry"] = _stamp(path)
                self._snapshot_sent = time.monotonic()
                return ["registry"]
        return []

    def stats(self) -> Dict[str, int]:
        """Log messages received, of them duplicates dropped by (kiosk, seq), and refused as unreadable."""
        c = self.collector
        return {"received": c.received, "duplicates": c.duplicates, "refused": c.refused}

    # ---- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.client.loop_start()
        try:
            while not stop.wait(self.poll_s):
                try:
                    published = self.publish_pending()
                except Exception as exc:  # a database busy, a key being replaced: try again next turn
                    log.warning("office: could not publish: %s", exc)
                    published = []
                if published:
                    log.info("office: published %s", ", ".join(published))
                self.collector.acknowledge()
        finally:
            self.collector.acknowledge()
            self.client.loop_stop()
            self.client.disconnect()
            self.collector.close()
            if self._db is not None:
                self._db.close()


# ---- the community key's rotation -------------------------------------------------------------


def rotate_key(home: Home, grace_days: float, now: Optional[float] = None) -> Dict[str, Any]:
    """Replace the community key: a new key pair, the rotation signed with the old key (kiosks trust it because they
    trust the old key), the revocation list re-signed with the new one. Passes signed with the old key are honoured
    for ``grace_days`` more (0: at once refused, for a key that leaked). The running office publishes it; every other
    document is re-signed with the new key on its next turn.

    The new private key is written first, to ``keys/community.key.next``, and becomes ``community.key`` last: a
    rotation that stopped half-way (a crash, a full disk) is finished by running it again, with the same new key and
    the same signed rotation."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.fleet.documents import public_key_text
    from kiosk.store.keyring import remember_previous
    from kiosk.store.passes import key_id, load_private_key, write_public_key
    from kiosk.store.revocations import RevocationList, apply_list_locked, list_lock, load_list, sign_list

    if not 0 <= grace_days <= 3650:
        raise FleetError("grace days {}: must be 0 … 3650".format(grace_days))
    now = time.time() if now is None else now
    pending = home.keys / "community.key.next"
    with list_lock(home):
        old = load_private_key(home.private_key)
        if pending.exists():
            new = load_private_key(pending)  # finish the rotation that stopped half-way
        else:
            new = Ed25519PrivateKey.generate()
            atomic_write(pending, new.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()), mode=0o600)
        doc = None
        try:
            doc = parse_document(published_path(home, "key").read_bytes(), old.public_key())
        except (OSError, ValueError):
            pass
        if doc is not None and doc.body.get("public_key") == public_key_text(new.public_key()):
            until, list_bytes = int(doc.body["old_passes_until"]), str(doc.body["revocations"]).encode("ascii")
        else:
            current = load_list(home, old.public_key())
            until = int(now + grace_days * 86400)
            list_bytes = sign_list(new, RevocationList(current.version + 1, int(now), key_id(new.public_key()),
                                                       current.passes, current.residents))
            held = _published_version(home, "key")
            atomic_write(published_path(home, "key"), sign_document(old, "key", held + 1, {
                "public_key": public_key_text(new.public_key()), "old_passes_until": until,
                "revocations": list_bytes.decode("ascii")}, issued_at=now))
        remember_previous(home, old.public_key(), until)
        listed = apply_list_locked(home, list_bytes, new.public_key())
        write_public_key(new.public_key(), home.public_key)
        retired = home.keys / "community.key.{}".format(key_id(old.public_key()).hex())
        atomic_write(retired, home.private_key.read_bytes(), mode=0o600)  # the old key, kept aside, never used again
        os.replace(str(pending), str(home.private_key))
    return {"old_key": key_id(old.public_key()).hex(), "new_key": key_id(new.public_key()).hex(),
            "old_passes_until": until, "revocations_version": listed.version}


def _published_version(home: Home, kind: str) -> int:
    try:
        return int(json.loads(published_path(home, kind).read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


# ---- what the office holds -------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FleetError("{} does not exist yet: start the office (dabai-kiosk office run) first".format(path))
    db = sqlite3.connect("file:{}?mode=ro".format(path), uri=True)
    db.row_factory = sqlite3.Row
    return db


def overview(path: Path, recent: int = 5, now: Optional[float] = None) -> List[Dict[str, Any]]:
    """One entry per kiosk the office heard of: its last contact, the list versions it holds, how many of its records
    the office holds, and its most recent decisions (newest first)."""
    now = time.time() if now is None else now
    db = _connect(path)
    try:
        kiosks: Dict[str, Dict[str, Any]] = {}
        for row in db.execute("SELECT kiosk, received_at, status FROM fleet_status"):
            try:
                status = json.loads(row["status"])
            except ValueError:
                status = {}
            kiosks[row["kiosk"]] = {"kiosk": row["kiosk"], "last_contact": row["received_at"],
                                    "versions": status.get("versions", {}), "refused": status.get("refused", 0),
                                    "last_refused": status.get("last_refused", [])}
        for row in db.execute("SELECT kiosk, upto, last_seen FROM fleet_kiosks"):
            entry = kiosks.setdefault(row["kiosk"], {"kiosk": row["kiosk"], "last_contact": row["last_seen"],
                                                     "versions": {}, "refused": 0, "last_refused": []})
            entry["last_contact"] = max(entry["last_contact"] or 0, row["last_seen"])
            entry["records_upto"] = row["upto"]
        for name, entry in kiosks.items():
            entry.setdefault("records_upto", 0)
            entry["records"] = db.execute("SELECT COUNT(*) FROM fleet_log WHERE kiosk = ?", (name,)).fetchone()[0]
            entry["recent"] = [dict(r) for r in db.execute(
                "SELECT seq, ts, outcome, reason, resident_name, pass_serial FROM fleet_log WHERE kiosk = ? "
                "ORDER BY seq DESC LIMIT ?", (name, recent))]
            entry["silent_s"] = now - entry["last_contact"] if entry["last_contact"] else None
        return [kiosks[k] for k in sorted(kiosks)]
    finally:
        db.close()


def verify_all(path: Path, kiosk: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every kiosk's log as the office holds it, checked as the kiosk's own ``log verify`` checks it
    (:func:`kiosk.store.chain.verify_chain`): the hash chain over the unbroken run from the first record, and the
    kiosk's signed checkpoints against it, with the key the office pinned for that kiosk. Records received past a gap
    are counted, not judged: the kiosk sends what is missing until the office holds it. ``kiosk``: that one only."""
    from cryptography.hazmat.primitives import serialization

    from kiosk.fleet.logsync import RECORD_FIELDS
    from kiosk.store.chain import Checkpoint, verify_chain

    db = _connect(path)
    try:
        results = []
        names = [kiosk] if kiosk is not None else [r[0] for r in db.execute(
            "SELECT DISTINCT kiosk FROM fleet_log ORDER BY kiosk")]
        for kiosk in names:
            rows = [dict(zip(RECORD_FIELDS, r)) for r in db.execute("SELECT {} FROM fleet_log WHERE kiosk = ? ORDER BY "
                                                                    "seq".format(", ".join(RECORD_FIELDS)), (kiosk,))]
            run = 0
            while run < len(rows) and rows[run]["seq"] == run + 1:
                run += 1
            public_key, problems = None, []
            key_row = db.execute("SELECT public_key, other FROM fleet_keys WHERE kiosk = ?", (kiosk,)).fetchone()
            if key_row is not None:
                try:
                    public_key = serialization.load_pem_public_key(key_row["public_key"].encode("ascii"))
                except ValueError as exc:
                    problems.append("its checkpoint key is unreadable: {}".format(exc))
                if key_row["other"]:
                    problems.append("it reported another checkpoint key than the one first seen: a replaced kiosk "
                                    "or an impostor")
            checkpoints = [Checkpoint(r["id"], int(r["seq"]), r["hash"], float(r["ts"]), r["sig"]) for r in db.execute(
                "SELECT id, seq, hash, ts, sig FROM fleet_checkpoints WHERE kiosk = ? AND seq <= ? ORDER BY seq",
                (kiosk, run))]
            verdict = verify_chain(rows[:run], checkpoints if public_key is not None else [], public_key)
            result: Dict[str, Any] = {"kiosk": kiosk, "ok": verdict.ok and not problems, "records": len(rows),
                                      "gaps": len(rows) - run, "checkpoint": verdict.last_checkpoint}
            if not verdict.ok:
                result.update(bad_seq=verdict.first_bad, why=verdict.problems[0])
            elif problems:
                result.update(bad_seq=None, why=problems[0])
            results.append(result)
        return results
    finally:
        db.close()
