"""``dabai-kiosk bench fleet``: a community of gates on a real Mosquitto, cut off and back, and what reached the office.

Everything runs as its own process on this machine, as it would across a community: Mosquitto with the fleet's TLS
configuration (``fleet init``), the office (``dabai-kiosk office run``) and at least five kiosk processes. Each kiosk
process is the kiosk's own store, pass verifier (Ed25519, the signed revocation list, the registry the office sent)
and fleet link (:class:`kiosk.fleet.link.KioskLink`); what it leaves out is the camera and the voice: each decision is
a resident's pass, checked and written to the hash-chained access log, as fast as ``--rate`` allows.

While the kiosks decide, the bench revokes passes at the office, adds a resident (a new registry version), cuts three
kiosks off the broker and back, kills one kiosk process and starts it again, stops the broker three times and the
office once and starts them again, and publishes a forged list and a replayed old one. It reports:

* records produced by the kiosks, received at the office, lost, and duplicated after de-duplication (goal: 0 and 0);
* revocation propagation, from the office's signed list to each connected kiosk applying it: p50, p95 (goal ≤ 2 s);
* how long a kiosk that was cut off takes to catch up (every record it made offline held by the office);
* whether the forged and the replayed message were refused by every kiosk, and changed nothing;
* passes granted after the kiosk had applied their revocation (goal: 0), and every kiosk's chain checked by the office.

The kiosk process is ``python -m kiosk.bench.fleet kiosk --home H --tokens F --count N --rate R``: it prints one JSON
line per event (applied, refused, cut, joined, done) and reads ``cut``, ``join`` and ``stop`` on its standard input.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

GOAL_PROPAGATION_P95_S = 2.0
SCENARIO_S = 95.0  # about how long the cuts and revocations take


# ---- the kiosk process ----------------------------------------------------------------------------


def kiosk_main(argv: List[str]) -> int:
    """One kiosk: decisions from passes, the access log, the fleet link; events as JSON lines on stdout."""
    p = argparse.ArgumentParser(prog="kiosk.bench.fleet kiosk")
    p.add_argument("--home", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--count", type=int, required=True, help="decisions this kiosk's log holds when it is done")
    p.add_argument("--rate", type=float, default=25.0, help="decisions per second")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from kiosk.config import Home, load_config
    from kiosk.core.events import Decision
    from kiosk.fleet.link import KioskLink
    from kiosk.runtime.assemble import open_store, pass_checker

    home = Home(Path(args.home))
    config = load_config(home.config)
    store = open_store(home, writer=True)
    check = pass_checker(home, store.registry)
    tokens = json.loads(Path(args.tokens).read_text(encoding="utf-8"))
    rng = random.Random(args.seed)
    out_lock = threading.Lock()

    def emit(**event: Any) -> None:
        event["t"] = time.time()
        with out_lock:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            sys.stdout.flush()

    def head() -> int:
        return store.access_log.head

    state: Dict[str, Any] = {"stop_link": None}

    def start_link() -> None:
        link = KioskLink(home, home.fleet, store.access_log, store.db, config.fleet,
                         on_applied=lambda name, version: emit(event="applied", list=name, version=version),
                         on_refused=lambda name, why: emit(event="refused", list=name, why=why))
        state["link"], state["stop_link"] = link, link.start()

    def stop_link() -> None:
        if state["stop_link"] is not None:
            state["stop_link"]()
            state["stop_link"] = None

    finished = threading.Event()

    def commands() -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "cut":
                stop_link()
                emit(event="cut", head=head())
            elif word == "join":
                start_link()
                emit(event="joined", head=head())
            elif word == "stop":
                break
        finished.set()

    start_link()
    emit(event="started", head=head())
    threading.Thread(target=commands, name="commands", daemon=True).start()
    period = 1.0 / args.rate
    due = time.monotonic()
    while head() < args.count and not finished.is_set():
        result = check(rng.choice(tokens))
        store.access_log.append(Decision(
            "granted" if result.valid else "denied", "ok" if result.valid else "pass_refused",
            mask="correct", pass_reason=result.reason, resident_id=result.resident_id,
            resident_name=result.resident_name, pass_serial=result.serial, intent="enter", gate_opened=result.valid))
        due += period
        time.sleep(max(0.0, due - time.monotonic()))
    emit(event="done", head=head())
    finished.wait()
    stop_link()
    store.close()
    return 0


# ---- the bench --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Proc:
    """A child process whose JSON lines are collected as events."""

    def __init__(self, name: str, argv: List[str], env: Dict[str, str], stdin: bool = False,
                 log_path: Optional[Path] = None) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.events: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.log_path = log_path
        self._stdin = stdin
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        err = open(str(self.log_path), "ab") if self.log_path is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.PIPE if self._stdin else subprocess.DEVNULL)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line.decode("utf-8"))
            except ValueError:
                continue
            with self.lock:
                self.events.append(event)

    def send(self, word: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((word + "\n").encode("ascii"))
        self.proc.stdin.flush()

    def find(self, pred: Callable[[Dict[str, Any]], bool]) -> List[Dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if pred(e)]

    def wait_event(self, pred: Callable[[Dict[str, Any]], bool], timeout: float) -> Optional[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(pred)
            if found:
                return found[0]
            time.sleep(0.02)
        return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def _office_read(db_path: Path, sql: str) -> Dict[str, Any]:
    """Per kiosk, one value from the office's database, read beside the running office ({} while it cannot be)."""
    if not db_path.exists():
        return {}
    try:
        db = sqlite3.connect("file:{}?mode=ro".format(db_path), uri=True, timeout=5)
        try:
            return dict(db.execute(sql).fetchall())
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def _office_upto(db_path: Path) -> Dict[str, int]:
    """Per kiosk, the seq up to which the office holds an unbroken run."""
    return _office_read(db_path, "SELECT kiosk, upto FROM fleet_kiosks")


def _office_heard(db_path: Path) -> Dict[str, float]:
    """Per kiosk, when the office last received its heartbeat."""
    return _office_read(db_path, "SELECT kiosk, received_at FROM fleet_status")


def _setup(folder: Path, kiosks: int, residents: int, status_every_s: float) -> Dict[str, Any]:
    from kiosk.bench.throughput import resident_names
    from kiosk.config import FleetConfig, Home, load_config, save_config
    from kiosk.fleet.broker import add_member, init_fleet
    from kiosk.fleet.link import join
    from kiosk.runtime.assemble import open_store
    from kiosk.store.passes import create_keys, issue_pass

    port = _free_port()
    fleet_dir = folder / "fleet"
    init_fleet(fleet_dir, "bench", port=port, bind="127.0.0.1")
    office = Home(folder / "office")
    key = create_keys(office.private_key, office.public_key)
    store = open_store(office, writer=True)
    tokens = []
    try:
        now = time.time()
        for name in resident_names(residents):
            resident = store.registry.add(name, "1-101")
            tokens.append({"resident": resident.id, "token": issue_pass(store.registry, key, resident.id, 30, now)[1],
                           "serial": store.registry.passes_of(resident.id)[-1].serial})
    finally:
        store.close()
    homes = []
    for i in range(kiosks):
        name = "gate-{}".format(i + 1)
        bundle = add_member(fleet_dir, name)
        shutil.copy(str(office.public_key), str(bundle / "community.pub"))
        home = Home(folder / name)
        join(home, bundle)
        config = load_config(home.config)
        from dataclasses import replace as dc_replace

        save_config(dc_replace(config, fleet=FleetConfig(status_every_s=status_every_s)), home.config)
        homes.append(home)
    (folder / "tokens.json").write_text(json.dumps([t["token"] for t in tokens]), encoding="utf-8")
    return {"port": port, "fleet": fleet_dir, "office": office, "homes": homes, "tokens": tokens}


def run_fleet_bench(out: Path, kiosks: int = 5, decisions: int = 10000, rate: float = 0.0, residents: int = 60,
                    revocations: int = 8, seed: int = 0, keep: bool = False,
                    echo: Callable[[str], None] = lambda line: None) -> Dict[str, Any]:
    """Run the scenario and return the report (also written to ``out/report.json``)."""
    from kiosk.config import Home
    from kiosk.fleet.broker import BrokerProcess
    from kiosk.fleet.office import office_database, verify_all
    from kiosk.runtime.assemble import open_store
    from kiosk.store.passes import create_keys
    from kiosk.store.revocations import RevocationList, load_list, revoke_pass, sign_list

    if kiosks < 1:
        raise ValueError("at least one kiosk")
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="dabai-fleet-", dir=str(out)))
    rng = random.Random(seed)
    setup = _setup(folder, kiosks, residents, status_every_s=1.0)
    office_home: Home = setup["office"]
    homes: List[Home] = setup["homes"]
    names = [h.root.name for h in homes]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    python = sys.executable
    per_kiosk = -(-decisions // kiosks)
    rate = rate or per_kiosk / SCENARIO_S  # by default the kiosks decide all through the cuts
    broker = BrokerProcess(setup["fleet"] / "broker" / "mosquitto.conf", folder / "mosquitto.log")
    timeline: List[Tuple[float, str]] = []

    def note(what: str) -> None:
        timeline.append((time.time(), what))
        echo("{:7.1f} s  {}".format(time.time() - t_start, what))

    t_start = time.time()
    broker.start()
    office = Proc("office", [python, "-m", "kiosk", "office", "run", "--home", str(office_home.root), "--bundle",
                             str(setup["fleet"] / "members" / "office")], env, log_path=folder / "office.log")
    procs: Dict[str, Proc] = {}
    for i, (name, home) in enumerate(zip(names, homes)):
        procs[name] = Proc(name, [python, "-m", "kiosk.bench.fleet", "kiosk", "--home", str(home.root), "--tokens",
                                  str(folder / "tokens.json"), "--count", str(per_kiosk), "--rate", str(rate),
                                  "--seed", str(seed * 100 + i)], env, stdin=True, log_path=folder / "{}.log".format(name))
    connected = {name: True for name in names}  # whether a kiosk is meant to be reachable now (propagation samples)
    broker_up = [True]
    samples: List[Dict[str, Any]] = []
    revoked: Dict[int, float] = {}  # serial → when the office signed its revocation
    catch_up: List[Dict[str, Any]] = []
    try:
        for name, proc in procs.items():
            if proc.wait_event(lambda e: e.get("event") == "applied" and e.get("list") == "registry", 60) is None:
                raise RuntimeError("{} never received the office's registry (see {})".format(name, folder))
        note("every kiosk holds the office's registry")

        def wait_in_touch(which: List[str], since: float, timeout: float = 20.0) -> bool:
            """Until each kiosk's heartbeat reached the office after ``since``: the whole path works again."""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                heard = _office_heard(office_database(office_home))
                if all(heard.get(n, 0) >= since for n in which):
                    return True
                time.sleep(0.05)
            return False

        def revoke_one() -> None:
            wait_in_touch([n for n in names if connected[n]], time.time() - 0.5)
            entry = rng.choice([t for t in setup["tokens"] if t["serial"] not in revoked])
            store = open_store(office_home, writer=True)
            try:
                _, listed = revoke_pass(office_home, store.registry, entry["serial"])
            finally:
                store.close()
            t0 = time.time()
            revoked[entry["serial"]] = t0
            assert listed is not None
            watch = [n for n in names if connected[n] and broker_up[0]]
            samples.append({"serial": entry["serial"], "version": listed.version, "t0": t0, "kiosks": watch})
            note("revoked pass {} (list version {})".format(entry["serial"], listed.version))

        def cut(name: str, seconds: float) -> None:
            connected[name] = False
            procs[name].send("cut")
            note("{} cut off from the broker for {:.0f} s".format(name, seconds))
            time.sleep(seconds)
            procs[name].send("join")
            joined = procs[name].wait_event(lambda e: e.get("event") == "joined", 10)
            connected[name] = True
            note("{} back".format(name))
            if joined is not None:
                catch_up.append({"kiosk": name, "offline_s": seconds, "head": joined["head"], "t": joined["t"],
                                 "why": "kiosk cut off"})

        def broker_outage(seconds: float) -> None:
            broker_up[0] = False
            broker.stop()
            note("broker stopped for {:.0f} s".format(seconds))
            time.sleep(seconds)
            broker.start()
            broker_up[0] = True
            restarted = time.time()
            for n, h in zip(names, homes):
                catch_up.append({"kiosk": n, "offline_s": seconds, "head": _kiosk_head(h), "t": restarted,
                                 "why": "broker stopped"})
            note("broker back")

        def office_outage(seconds: float) -> None:
            office.terminate()
            note("office stopped for {:.0f} s".format(seconds))
            time.sleep(seconds)
            office.start()
            back = time.time()
            for n, h in zip(names, homes):
                catch_up.append({"kiosk": n, "offline_s": seconds, "head": _kiosk_head(h), "t": back,
                                 "why": "office stopped"})
            note("office back")

        def kill_kiosk(name: str, seconds: float) -> None:
            connected[name] = False
            procs[name].kill()
            note("{} killed (SIGKILL) for {:.0f} s".format(name, seconds))
            time.sleep(seconds)
            restarted = time.time()
            procs[name].start()
            wait_in_touch([name], restarted, 30)
            connected[name] = True
            catch_up.append({"kiosk": name, "offline_s": seconds, "head": _last_head(procs[name]), "t": restarted,
                             "why": "kiosk process killed"})
            note("{} started again".format(name))

        watching = threading.Event()

        def watch_catch_up() -> None:
            while not watching.wait(0.1):
                _catch_up_times(catch_up, _office_upto(office_database(office_home)))

        threading.Thread(target=watch_catch_up, name="catch-up", daemon=True).start()
        # the scenario: a revocation every few seconds between the cuts
        first_registry = (office_home.state / "office" / "registry.json").read_bytes()
        first_list: Optional[bytes] = None
        steps: List[Callable[[], None]] = [
            revoke_one, lambda: cut(names[0], 8), revoke_one, lambda: broker_outage(5), revoke_one,
            lambda: kill_kiosk(names[1 % len(names)], 4), revoke_one, lambda: office_outage(4), revoke_one,
            lambda: cut(names[2 % len(names)], 10), revoke_one, lambda: broker_outage(3), revoke_one,
            lambda: cut(names[3 % len(names)], 6), lambda: broker_outage(4), revoke_one,
        ]
        steps += [revoke_one] * max(0, revocations - sum(1 for s in steps if s is revoke_one))
        for step in steps:
            step()
            if first_list is None and office_home.revocations.exists():
                first_list = office_home.revocations.read_bytes()
            time.sleep(2.5)

        # a new resident: a new registry version, so the first snapshot becomes an old one
        store = open_store(office_home, writer=True)
        try:
            store.registry.add("新住户", "9-901")
        finally:
            store.close()
        for proc in procs.values():
            proc.wait_event(lambda e: e.get("event") == "applied" and e.get("list") == "registry" and e["version"] >= 2,
                            15)
        note("a resident added at the office: a new registry version everywhere")

        wait_in_touch(names, time.time() - 0.5)
        attacks = _attack(setup, office_home, first_registry, first_list, create_keys, RevocationList, load_list,
                          sign_list, folder)
        note("published a forged revocation list and replays of the first registry and list")
        time.sleep(3)
        refusals = {}
        for name, proc in procs.items():
            refused = proc.find(lambda e: e.get("event") == "refused" and e["t"] >= attacks["t"])
            refusals[name] = {
                "forged": any("signature" in e["why"] or "forged" in e["why"] for e in refused),
                "replayed_registry": any(e["list"] == "registry" and "older" in e["why"] for e in refused),
                "replayed_revocations": any(e["list"] == "revocations" and "older" in e["why"] for e in refused)}

        # every kiosk finishes its decisions, then the office must hold every record
        for name, proc in procs.items():
            if proc.wait_event(lambda e: e.get("event") == "done", 600) is None:
                raise RuntimeError("{} did not finish its decisions".format(name))
        note("every kiosk made its decisions")
        heads = {n: _last_done(procs[n]) for n in names}
        drained_t0 = time.time()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            upto = _office_upto(office_database(office_home))
            if all(upto.get(n, 0) >= heads[n] for n in names):
                break
            _catch_up_times(catch_up, upto)
            time.sleep(0.1)
        drain_s = time.time() - drained_t0
        watching.set()
        _catch_up_times(catch_up, _office_upto(office_database(office_home)))
        note("the office holds every record")
    finally:
        for proc in procs.values():
            try:
                proc.send("stop")
            except (OSError, ValueError, AssertionError):
                pass
        for proc in procs.values():
            proc.terminate(30)
        office.terminate(30)
        broker.stop()
    report = _account(homes, office_home, names, samples, procs, revoked, catch_up, refusals, office, timeline,
                      t_start, drain_s, verify_all(office_database(office_home)))
    report.update(kiosks=kiosks, rate_per_kiosk=rate, residents=residents, workdir=str(folder))
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    if not keep and report["ok"]:
        shutil.rmtree(str(folder), ignore_errors=True)
        report["workdir"] = None
    return report


def _kiosk_head(home: Any) -> int:
    """The last record in a kiosk's database now (read beside the running kiosk)."""
    db = sqlite3.connect("file:{}?mode=ro".format(home.database), uri=True, timeout=5)
    try:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM access_log").fetchone()[0])
    finally:
        db.close()


def _last_head(proc: Proc) -> int:
    heads = proc.find(lambda e: "head" in e)
    return int(heads[-1]["head"]) if heads else 0


def _last_done(proc: Proc) -> int:
    done = proc.find(lambda e: e.get("event") == "done")
    return int(done[-1]["head"])


def _catch_up_times(catch_up: List[Dict[str, Any]], upto: Dict[str, int]) -> None:
    now = time.time()
    for c in catch_up:
        if "catch_up_s" not in c and upto.get(c["kiosk"], 0) >= c["head"]:
            c["catch_up_s"] = now - c["t"]


def _attack(setup: Dict[str, Any], office_home: Any, first_registry: bytes, first_list: Optional[bytes],
            create_keys: Any, RevocationList: Any, load_list: Any, sign_list: Any, folder: Path) -> Dict[str, Any]:
    """With the office's credentials (what a stolen office certificate could do; not retained, so the broker's copy
    stays the office's): a revocation list signed with another key, and the first registry and list again."""
    from kiosk.config import Home
    from kiosk.fleet.broker import load_fleet
    from kiosk.fleet.logsync import connect_client
    from kiosk.store.passes import load_public_key

    bundle = setup["fleet"] / "members" / "office"
    fleet = load_fleet(bundle)
    client = connect_client(bundle, fleet, "bench-attacker")
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        forger = Home(folder / "forger")
        forger_key = create_keys(forger.private_key, forger.public_key)
        current = load_list(office_home, load_public_key(office_home.public_key))
        forged = sign_list(forger_key, RevocationList(current.version + 10, current.issued_at, current.key_id,
                                                      frozenset(), frozenset()))
        t = time.time()
        for topic, data in (("revocations", forged), ("registry", first_registry), ("revocations", first_list)):
            if data is not None:
                client.publish(fleet.topic("lists", topic), data, qos=1, retain=False).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    return {"t": t}


def _account(homes: List[Any], office_home: Any, names: List[str], samples: List[Dict[str, Any]],
             procs: Dict[str, Proc], revoked: Dict[int, float], catch_up: List[Dict[str, Any]],
             refusals: Dict[str, Dict[str, bool]], office: Proc, timeline: List[Tuple[float, str]], t_start: float,
             drain_s: float, chains: List[Dict[str, Any]]) -> Dict[str, Any]:
    from kiosk.fleet.office import office_database

    produced: Dict[str, Dict[int, str]] = {}
    granted_after: List[Dict[str, Any]] = []
    applied_at: Dict[str, List[Tuple[int, float]]] = {}
    for name in names:
        applied_at[name] = sorted((int(e["version"]), float(e["t"])) for e in procs[name].find(
            lambda e: e.get("event") == "applied" and e.get("list") == "revocations"))
    versions_of = {s["serial"]: s["version"] for s in samples}
    for name, home in zip(names, homes):
        db = sqlite3.connect(str(home.database))
        try:
            rows = db.execute("SELECT seq, uid, ts, outcome, pass_serial FROM access_log WHERE seq IS NOT NULL").fetchall()
        finally:
            db.close()
        produced[name] = {int(seq): uid for seq, uid, _, _, _ in rows}
        for seq, _, ts, outcome, serial in rows:
            if outcome != "granted" or serial not in versions_of:
                continue
            took = [t for v, t in applied_at[name] if v >= versions_of[serial]]
            if took and ts > min(took):
                granted_after.append({"kiosk": name, "seq": seq, "serial": serial})
    db = sqlite3.connect(str(office_database(office_home)))
    try:
        held = db.execute("SELECT kiosk, seq, uid FROM fleet_log").fetchall()
        distinct = db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT kiosk, seq FROM fleet_log)").fetchone()[0]
        distinct_uid = db.execute("SELECT COUNT(DISTINCT uid) FROM fleet_log").fetchone()[0]
    finally:
        db.close()
    at_office = {(k, int(s)): u for k, s, u in held}
    lost = [(k, s) for k in names for s in produced[k] if at_office.get((k, s)) != produced[k][s]]
    stray = [key for key in at_office if key[1] not in produced.get(key[0], {})]
    delays = []
    for sample in samples:
        for name in sample["kiosks"]:
            took = [t for v, t in applied_at[name] if v >= sample["version"]]
            if took:
                delays.append(max(0.0, min(took) - sample["t0"]))
    missing_samples = sum(len(s["kiosks"]) for s in samples) - len(delays)
    stats = [e for e in office.find(lambda e: e.get("office") == "stopped")]
    office_received = sum(int(e["received"]) for e in stats)
    office_dups = sum(int(e["duplicates"]) for e in stats)
    produced_n = sum(len(p) for p in produced.values())
    report = {
        "records": {"produced": produced_n, "received_at_office": len(at_office), "lost": len(lost),
                    "duplicates_after_dedup": len(held) - distinct + (len(held) - distinct_uid),
                    "stray": len(stray), "messages_received": office_received,
                    "duplicate_messages_dropped": office_dups},
        "revocation_propagation_s": {
            "samples": len(delays), "missing": missing_samples,
            "p50": _round(statistics.median(delays)) if delays else None, "p95": _round(_percentile(delays, 0.95)),
            "max": _round(max(delays)) if delays else None, "goal_p95": GOAL_PROPAGATION_P95_S},
        "catch_up_s": [{"kiosk": c["kiosk"], "why": c["why"], "offline_s": c["offline_s"],
                        "catch_up_s": _round(c.get("catch_up_s"))} for c in catch_up],
        "drain_after_last_decision_s": _round(drain_s),
        "forged_and_replayed_refused": refusals,
        "granted_after_revocation_applied": len(granted_after),
        "chains": chains,
        "timeline": [["{:.1f}".format(t - t_start), what] for t, what in timeline],
        "duration_s": _round(time.time() - t_start),
    }
    report["ok"] = bool(
        not lost and report["records"]["duplicates_after_dedup"] == 0 and not stray and delays and missing_samples == 0
        and (report["revocation_propagation_s"]["p95"] or 99) <= GOAL_PROPAGATION_P95_S
        and all(all(r.values()) for r in refusals.values()) and not granted_after and chains
        and all(c["ok"] for c in chains) and produced_n >= 1)
    return report


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    if sys.argv[1:2] == ["kiosk"]:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.exit(kiosk_main(sys.argv[2:]))
    sys.exit("usage: python -m kiosk.bench.fleet kiosk --home H --tokens F --count N [--rate R]")
