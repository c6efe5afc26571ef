"""``dabai-kiosk bench faults``: the fault matrix, each fault injected into a real ``run --headless``.

Every case builds a data home of its own (a community key, a resident with a pass, a config), renders camera
frames of that resident wearing a mask and holding up the pass into an image folder (the camera), and points
the gate at a recording relay: a pseudo-terminal opened by the kiosk's real serial relay driver
(:class:`kiosk.gate.recorder.RelayRecorder`). Then it starts ``python -m kiosk run --headless`` as a separate
process, injects the fault (a signal, a file deleted or damaged, a full disk, a locked database, a bad model or
config) and reports, per case:

* ``gate_after``: the relay's last command once the case is over (``off``, ``on``, or ``none`` if it never got one);
* ``records_reported``: decisions the kiosk printed as decided; ``records_found``: records in the database and
  the spool afterwards; ``records_lost``: reported but not found;
* ``verify``: what ``dabai-kiosk log verify`` says (ok, or the first bad record);
* ``exit``: the exit status; ``traceback``: whether one reached stdout or stderr; ``stderr_lines``;
* ``expected``: whether the case ended as a fail-safe kiosk must (each case says what it expects in ``expect``).

A full disk is a small tmpfs mounted for the home (needs root); without root that case is skipped, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2

from kiosk.config import Config, Home, save_config
from kiosk.config import replace as config_replace

FPS = 10.0
CYCLE = 40  # frames per resident: 15 empty lobby, 25 with the resident and the pass
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: Optional[int]
    out: str
    err: str

    @property
    def decided(self) -> List[str]:
        return [line for line in self.out.splitlines() if "  decided  " in line]

    @property
    def opened(self) -> int:
        return sum(1 for line in self.out.splitlines() if "gate OPEN" in line)

    @property
    def latencies_ms(self) -> List[float]:
        found = []
        for line in self.out.splitlines():
            if "ms after the pass was read" in line:
                found.append(float(line.split("; ")[-1].split(" ms")[0]))
        return found

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.out + self.err


@dataclass
class Rig:
    """One data home, its camera folder and its recording relay."""

    root: Path
    relay: Any
    home: Home = field(init=False)
    token: str = ""
    procs: List[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = Home(self.root / "home")
        self.frames = self.root / "frames"

    # ---- setting up ----------------------------------------------------------------------------

    def setup(self, **sections: Dict[str, Any]) -> None:
        from kiosk.runtime.assemble import open_store
        from kiosk.store.passes import create_keys, issue_pass

        self.home.root.mkdir(parents=True, exist_ok=True)
        config = Config()
        for section, values in {
            "camera": {"source": str(self.frames), "loop": True, "fps": FPS},
            "gate": dict(self.relay.gate_settings(), pulse_ms=1500),
            "speech": {"tts": "none"},
            "listen": {"enabled": False},
            **sections,
        }.items():
            config = config_replace(config, section, **values)
        save_config(config, self.home.config)
        key = create_keys(self.home.private_key, self.home.public_key)
        store = open_store(self.home)
        try:
            resident = store.registry.add("张三", "3-201")
            self.token = issue_pass(store.registry, key, resident.id, 30, time.time())[1]
        finally:
            store.close()
        self.render_frames()

    def render_frames(self) -> None:
        from kiosk.demo.scenes import Shot, render

        self.frames.mkdir(parents=True, exist_ok=True)
        shots = [Shot(15, CYCLE, person=("person1", "with_mask")), Shot(17, CYCLE, code=self.token)]
        for i, frame in enumerate(render(shots, CYCLE, seed=1)):
            cv2.imwrite(str(self.frames / "{:04d}.jpg".format(i)), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])

    # ---- running -------------------------------------------------------------------------------

    def env(self) -> Dict[str, str]:
        env = dict(os.environ, DABAI_HOME=str(self.home.root), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def start(self, duration: float = 0.0) -> subprocess.Popen:
        argv = [sys.executable, "-m", "kiosk", "run", "--headless"] + (["--duration", str(duration)] if duration else [])
        out = open(str(self.root / "stdout.txt"), "w")
        err = open(str(self.root / "stderr.txt"), "w")
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=self.env(), start_new_session=True)
        out.close()
        err.close()
        self.procs.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen, timeout: float = 60.0) -> Run:
        try:
            code: Optional[int] = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = None
        return Run(code, (self.root / "stdout.txt").read_text(errors="replace"),
                   (self.root / "stderr.txt").read_text(errors="replace"))

    def run(self, duration: float, timeout: float = 90.0) -> Run:
        return self.finish(self.start(duration), timeout)

    def cli(self, *argv: str, timeout: float = 60.0) -> Run:
        done = subprocess.run([sys.executable, "-m", "kiosk"] + list(argv), capture_output=True, text=True,
                              env=self.env(), timeout=timeout)
        return Run(done.returncode, done.stdout, done.stderr)

    def wait_output(self, text: str, timeout: float = 60.0, count: int = 1) -> bool:
        deadline = time.monotonic() + timeout
        path = self.root / "stdout.txt"
        while time.monotonic() < deadline:
            if path.exists() and path.read_text(errors="replace").count(text) >= count:
                return True
            time.sleep(0.05)
        return False

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)

    # ---- looking afterwards --------------------------------------------------------------------

    def records_found(self) -> int:
        """Records in the database (opened read-only, never created) and in the spool."""
        found = 0
        if self.home.database.exists() and self.home.database.stat().st_size:
            try:
                con = sqlite3.connect("file:{}?mode=ro".format(self.home.database), uri=True)
                try:
                    found = con.execute("SELECT COUNT(*) FROM access_log WHERE outcome != 'alarm'").fetchone()[0]
                finally:
                    con.close()
            except sqlite3.Error:
                found = 0
        if self.home.spool.exists():
            for line in self.home.spool.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    found += json.loads(line).get("outcome") != "alarm"
                except ValueError:
                    pass
        return found

    def verify(self) -> Dict[str, Any]:
        done = self.cli("log", "verify", "--json")
        try:
            verdict = json.loads(done.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"ok": False, "error": (done.err.strip().splitlines() or ["no output"])[-1], "exit": done.code}
        return {"ok": verdict["ok"], "first_bad_seq": verdict["first_bad_seq"],
                "problem": verdict["problems"][0] if verdict["problems"] else None, "exit": done.code}


# ---- the cases --------------------------------------------------------------------------------------


def _row(rig: Rig, run: Run, expect: str, ok: bool, **extra: Any) -> Dict[str, Any]:
    last = rig.relay.last()
    reported = len(run.decided)
    found = rig.records_found()
    row = {
        "gate_after": last.command if last is not None else "none",
        "gate_opened": run.opened,
        "records_reported": reported,
        "records_found": found,
        "records_lost": max(0, reported - found),
        "exit": run.code,
        "traceback": run.traceback,
        "stderr_lines": len(run.err.splitlines()),
        "expect": expect,
    }
    row.update(extra)
    row["expected"] = bool(ok and row["gate_after"] != "on" and row["records_lost"] == 0 and not row["traceback"])
    return row


def case_baseline(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    run = rig.run(14)
    verdict = rig.verify()
    return _row(rig, run, "grants open the gate; every record verifies; exit 0",
                run.code == 0 and run.opened >= 1 and verdict["ok"], verify=verdict,
                decision_ms=run.latencies_ms)


KILL_PULSE_MS = 8000  # long, so that a release seen after the kill cannot be the pulse's own end


def _kill_during_pulse(rig: Rig, whole_group: bool) -> Dict[str, Any]:
    rig.setup(gate=dict(rig.relay.gate_settings(), pulse_ms=KILL_PULSE_MS))
    proc = rig.start()
    on = rig.relay.wait_for("on", timeout=60)
    killed_at = time.time()
    if whole_group:  # the kiosk and its gate guardian (its own session): as systemd's SIGKILL of the whole cgroup
        for pid in [proc.pid] + _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    else:
        os.kill(proc.pid, signal.SIGKILL)
    run = rig.finish(proc, 10)
    off = rig.relay.wait_for("off", after=on, timeout=3.0) if on is not None else None
    closed_by = "guardian" if off is not None else None
    left_on_s = None if off is not None else round(time.time() - killed_at, 1)
    supervisor = rig.cli("gate", "close")  # what systemd's ExecStopPost runs after any death
    if off is None and on is not None:
        off = rig.relay.wait_for("off", after=on, timeout=3.0)
        closed_by = "supervisor (dabai-kiosk gate close)" if off is not None else None
    rig.kill_all()
    verdict = rig.verify()
    return _row(rig, run, "relay released after the kill (by the guardian, else by the supervisor's gate close); "
                "the grant's record is on disk",
                on is not None and off is not None and supervisor.code == 0, verify=verdict,
                pulsed=on is not None, pulse_ms=KILL_PULSE_MS, closed_by=closed_by,
                off_after_kill_s=round(off.t - killed_at, 3) if off is not None else None,
                relay_on_until_supervisor_s=left_on_s, gate_close_exit=supervisor.code)


def _descendants(pid: int) -> List[int]:
    """Every process below ``pid`` (Linux /proc), children before grandchildren."""
    parents: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/{}/stat".format(entry)) as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def case_sigkill_during_pulse(rig: Rig) -> Dict[str, Any]:
    return _kill_during_pulse(rig, whole_group=False)


def case_sigkill_all_during_pulse(rig: Rig) -> Dict[str, Any]:
    return _kill_during_pulse(rig, whole_group=True)


def case_sigterm_during_pulse(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    proc = rig.start()
    rig.relay.wait_for("on", timeout=60)
    t = time.time()
    proc.send_signal(signal.SIGTERM)
    run = rig.finish(proc, 20)
    off = rig.relay.wait_for("off", since=t, timeout=2)
    return _row(rig, run, "stops in order: relay off, records flushed, exit 0", run.code == 0 and off is not None,
                verify=rig.verify())


def _restart_after(rig: Rig, damage: Callable[[Rig], None], expect: str, want_exit: int) -> Dict[str, Any]:
    """Leave the relay ON (everything killed during a pulse), damage something, start again."""
    rig.setup()
    proc = rig.start()
    rig.relay.wait_for("on", timeout=60)
    os.killpg(proc.pid, signal.SIGKILL)
    rig.finish(proc, 10)
    left_on = rig.relay.is_on()
    damage(rig)
    t = time.time()
    run = rig.run(8, timeout=60)
    off = rig.relay.wait_for("off", since=t, timeout=1)
    row = _row(rig, run, expect, run.code == want_exit and off is not None, relay_left_on_before=left_on)
    row["records_reported"] = len(run.decided)
    return row


def case_restart_bad_config(rig: Rig) -> Dict[str, Any]:
    def damage(r: Rig) -> None:
        r.home.config.write_text("[policy\nmask_required = maybe\n", encoding="utf-8")

    return _restart_after(rig, damage, "relay driven off from the saved gate section; exit 2 naming the config", 2)


def case_restart_corrupt_db(rig: Rig) -> Dict[str, Any]:
    def damage(r: Rig) -> None:
        _truncate_db(r)

    return _restart_after(rig, damage, "relay driven off first; exit 3 naming the database", 3)


def _remove_db(rig: Rig, suffixes: Tuple[str, ...] = ("", "-wal", "-shm")) -> None:
    """Delete the database (or only its WAL and shared-memory files) as a person at a shell would."""
    for suffix in suffixes:
        path = rig.home.database.with_name(rig.home.database.name + suffix)
        if path.exists():
            path.unlink()


def _truncate_db(rig: Rig) -> None:
    _remove_db(rig, ("-wal", "-shm"))
    data = rig.home.database.read_bytes()
    rig.home.database.write_bytes(data[: max(100, len(data) // 3)])


def _start_with_db(rig: Rig, damage: Callable[[Path], None], expect: str, want_exit: int) -> Dict[str, Any]:
    rig.setup()
    damage(rig.home.database)
    run = rig.run(8, timeout=60)
    one_line = [line for line in run.err.splitlines() if line.startswith("dabai-kiosk:")]
    return _row(rig, run, expect, run.code == want_exit and len(one_line) == 1 and run.opened == 0,
                message=one_line[0] if one_line else None)


def case_db_truncated(rig: Rig) -> Dict[str, Any]:
    def damage(db: Path) -> None:
        con = sqlite3.connect(str(db))
        con.execute("CREATE TABLE filler (x BLOB)")
        for _ in range(64):
            con.execute("INSERT INTO filler VALUES (randomblob(4000))")
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2])

    return _start_with_db(rig, damage, "exit 3 with one sentence; gate never opens", 3)


def case_db_random(rig: Rig) -> Dict[str, Any]:
    return _start_with_db(rig, lambda db: db.write_bytes(os.urandom(32768)), "exit 3 with one sentence", 3)


def case_db_foreign(rig: Rig) -> Dict[str, Any]:
    def damage(db: Path) -> None:
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if path.exists():
                path.unlink()
        con = sqlite3.connect(str(db))
        con.execute("CREATE TABLE photos (id INTEGER, path TEXT)")
        con.commit()
        con.close()

    return _start_with_db(rig, damage, "another program's database is not taken over: exit 3", 3)


def case_db_zero_bytes(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    first = rig.run(10)
    _remove_db(rig, ("-wal", "-shm"))
    rig.home.database.write_bytes(b"")
    run = rig.run(10)
    verdict = rig.verify()
    alarm = "ALARM" in run.err or "alarm" in run.err
    row = _row(rig, run, "an alarm, not a fresh start: the gate stays closed, verify names the gap",
               alarm and run.opened == 0 and not verdict["ok"], verify=verdict, records_before=len(first.decided))
    row["records_lost_expected"] = len(first.decided)  # emptied by the fault itself; the alarm reports them
    return row


def case_db_deleted_mid_run(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    proc = rig.start(24)
    rig.wait_output("  decided  ", timeout=60)
    rig.home.database.unlink()
    run = rig.finish(proc, 60)
    verdict = rig.verify()
    return _row(rig, run, "detected, restored from the open connection, reported as an alarm; no record lost; "
                "later grants held closed until acknowledged",
                "ALARM" in run.err and not verdict["ok"] and "deleted" in str(verdict.get("problem")), verify=verdict)


def case_db_locked(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    locker = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(float(sys.argv[2]))\n"
        "c.execute('ROLLBACK')\n"), str(rig.home.database), "40"], stdout=subprocess.PIPE, text=True)
    assert locker.stdout is not None
    locker.stdout.readline()
    run = rig.run(16)
    locker.kill()
    locker.wait()
    lat = run.latencies_ms
    worst = max(lat) if lat else None
    return _row(rig, run, "grants still open within the decision budget (records spooled, then written)",
                run.opened >= 1 and worst is not None and worst < 300, decision_ms=lat, verify=rig.verify())


def case_camera_folder_deleted(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    proc = rig.start(14)
    rig.wait_output("  decided  ", timeout=60)
    shutil.rmtree(str(rig.frames))
    run = rig.finish(proc, 60)
    said = "unavailable" in run.err
    return _row(rig, run, "camera unavailable status, back-off, bounded logging, no abort, exit 0",
                run.code == 0 and said and len(run.err.splitlines()) < 200)


def case_camera_junk(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    shutil.rmtree(str(rig.frames))
    rig.frames.mkdir()
    for i in range(20):
        (rig.frames / "{:04d}.jpg".format(i)).write_bytes(os.urandom(2000 + i))
    run = rig.run(8)
    return _row(rig, run, "camera unavailable status, bounded logging, no abort, exit 0",
                run.code == 0 and "unavailable" in run.err and len(run.err.splitlines()) < 200 and run.opened == 0)


def case_wrong_face_model(rig: Rig) -> Dict[str, Any]:
    rig.setup(vision={"face_model": str(REPO / "engines" / "mask_classifier_ft.onnx")})
    run = rig.run(8)
    return _row(rig, run, "vision unavailable at load; the gate stays closed; no per-frame traceback",
                run.code == 0 and "vision" in run.err and run.opened == 0 and len(run.err.splitlines()) < 100)


def case_damaged_model(rig: Rig) -> Dict[str, Any]:
    bad = rig.root / "damaged.onnx"
    bad.write_bytes((REPO / "engines" / "face_detector.onnx").read_bytes()[:5000])
    rig.setup(vision={"face_model": str(bad)})
    run = rig.run(8)
    return _row(rig, run, "vision unavailable at load; the gate stays closed",
                run.code == 0 and "vision" in run.err and run.opened == 0)


def _config_case(rig: Rig, text: str, expect: str, want_exit: int) -> Dict[str, Any]:
    """The config broken after [gate] (which the kiosk still reads, to drive the relay closed)."""
    rig.setup()
    gate = "[gate]\n" + "".join('{} = "{}"\n'.format(k, v) if isinstance(v, str) else "{} = {}\n".format(k, v)
                                for k, v in rig.relay.gate_settings().items())
    rig.home.config.write_bytes((gate + text).encode("utf-8"))
    t = time.time()
    run = rig.run(6)
    off = rig.relay.wait_for("off", since=t - 1, timeout=1)
    return _row(rig, run, expect, run.code == want_exit and len(run.err) < 5000 and off is not None,
                stderr_bytes=len(run.err))


def case_config_deep(rig: Rig) -> Dict[str, Any]:
    return _config_case(rig, "[policy]\nx = " + "[" * 500 + "]" * 500 + "\n",
                        "relay driven off from [gate]; the rest refused in one short message: exit 2", 2)


def case_config_unknown_keys(rig: Rig) -> Dict[str, Any]:
    body = "[policy]\n" + "".join("k{} = 1\n".format(i) for i in range(200000))
    return _config_case(rig, body, "relay driven off from [gate]; refused, message capped: exit 2", 2)


def case_config_bom(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    text = rig.home.config.read_text(encoding="utf-8")
    rig.home.config.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    run = rig.run(12)
    return _row(rig, run, "a UTF-8 byte-order mark is accepted: the kiosk runs", run.code == 0 and run.opened >= 1)


def case_gate_bad_hex(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    text = rig.home.config.read_text(encoding="utf-8")
    rig.home.config.write_text(text.replace('serial_open_hex = "{}"'.format(rig.relay.open_hex),
                                            'serial_open_hex = "ZZ"'), encoding="utf-8")
    check = rig.cli("config", "check")
    run = rig.run(10)
    return _row(rig, run, "config check fails naming the key; the gate never opens",
                check.code != 0 and "serial_open_hex" in check.err + check.out and run.opened == 0,
                config_check_exit=check.code)


def case_tampered_log(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    run = rig.run(14)
    before = rig.verify()
    con = sqlite3.connect(str(rig.home.database), isolation_level=None)
    con.execute("UPDATE access_log SET outcome = 'denied' WHERE seq = (SELECT MIN(seq) FROM access_log)")
    con.close()
    after = rig.verify()
    return _row(rig, run, "log verify: ok before, names the edited record after",
                before["ok"] and not after["ok"] and after.get("first_bad_seq") == 1, verify_before=before,
                verify=after)


def _mounted_home(rig: Rig, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    rig.home.root.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size={}".format(size), "tmpfs", str(rig.home.root)],
                          capture_output=True)
    return done.returncode == 0


def _unmount(rig: Rig) -> None:
    subprocess.run(["umount", "-l", str(rig.home.root)], capture_output=True)


def _fill(path: Path) -> None:
    with open(str(path), "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def case_disk_full_mid_run(rig: Rig) -> Dict[str, Any]:
    if not _mounted_home(rig, "24m"):
        return {"skipped": "needs root to mount a small tmpfs for the data home"}
    try:
        rig.setup()
        proc = rig.start(30)
        rig.wait_output("  decided  ", timeout=60)
        filler = rig.home.root / "filler.bin"
        _fill(filler)
        rig.wait_output("  decided  ", timeout=30, count=3)
        filler.unlink()  # space returns
        run = rig.finish(proc, 60)
        held = sum(1 for line in run.out.splitlines() if "HELD CLOSED" in line)
        verdict = rig.verify()
        return _row(rig, run, "no record lost; grants while full held closed; written when space returns; exit 0",
                    run.code == 0, verify=verdict, grants_held_closed=held)
    finally:
        rig.kill_all()
        _unmount(rig)


def case_disk_full_at_start(rig: Rig) -> Dict[str, Any]:
    if not _mounted_home(rig, "24m"):
        return {"skipped": "needs root to mount a small tmpfs for the data home"}
    try:
        rig.setup()
        _fill(rig.home.root / "filler.bin")
        run = rig.run(8)
        return _row(rig, run, "refused or held closed with a clear message; no traceback",
                    run.opened == 0 and run.code in (0, 3))
    finally:
        rig.kill_all()
        _unmount(rig)


def case_read_only_home(rig: Rig) -> Dict[str, Any]:
    if not _mounted_home(rig, "24m"):
        return {"skipped": "needs root to mount a read-only home"}
    try:
        rig.setup()
        subprocess.run(["mount", "-o", "remount,ro", str(rig.home.root)], check=True, capture_output=True)
        run = rig.run(8)
        return _row(rig, run, "exit 3 with one sentence; the gate never opens", run.code == 3 and run.opened == 0,
                    message=(run.err.strip().splitlines() or [""])[-1])
    finally:
        rig.kill_all()
        _unmount(rig)


def case_revoked_pass_after_db_emptied(rig: Rig) -> Dict[str, Any]:
    rig.setup()
    revoke = rig.cli("residents", "revoke", "张三")
    _remove_db(rig)
    rig.cli("residents", "add", "张三", "--unit", "3-201")
    check = rig.cli("pass", "verify", rig.token, "--json")
    run = rig.run(10)
    try:
        reason = json.loads(check.out.strip().splitlines()[-1])["reason"]
    except (ValueError, IndexError, KeyError):
        reason = None
    return _row(rig, run, "the revoked pass is refused again; the gate never opens",
                revoke.code == 0 and reason not in (None, "ok") and run.opened == 0, pass_reason=reason)


CASES: Dict[str, Callable[[Rig], Dict[str, Any]]] = {
    "baseline": case_baseline,
    "sigkill_during_pulse": case_sigkill_during_pulse,
    "sigkill_kiosk_and_guardian_during_pulse": case_sigkill_all_during_pulse,
    "sigterm_during_pulse": case_sigterm_during_pulse,
    "restart_with_bad_config_after_kill": case_restart_bad_config,
    "restart_with_corrupt_db_after_kill": case_restart_corrupt_db,
    "db_truncated": case_db_truncated,
    "db_random_bytes": case_db_random,
    "db_foreign": case_db_foreign,
    "db_zero_bytes_at_start": case_db_zero_bytes,
    "db_deleted_mid_run": case_db_deleted_mid_run,
    "db_locked_by_another_writer": case_db_locked,
    "disk_full_mid_run": case_disk_full_mid_run,
    "disk_full_at_start": case_disk_full_at_start,
    "read_only_home": case_read_only_home,
    "camera_folder_deleted": case_camera_folder_deleted,
    "camera_junk_images": case_camera_junk,
    "wrong_face_model": case_wrong_face_model,
    "damaged_model": case_damaged_model,
    "config_nested_500": case_config_deep,
    "config_200k_unknown_keys": case_config_unknown_keys,
    "config_utf8_bom": case_config_bom,
    "gate_bad_serial_hex": case_gate_bad_hex,
    "tampered_log_row": case_tampered_log,
    "revoked_pass_after_db_emptied": case_revoked_pass_after_db_emptied,
}


def run_faults(only: Optional[List[str]] = None, fuzz: int = 100000, echo: Optional[Callable[[str], None]] = None
               ) -> Dict[str, Any]:
    """Every case (or ``only``), then the pass fuzz over ``fuzz`` payloads (0: none)."""
    from kiosk.gate.recorder import RelayRecorder

    results: Dict[str, Any] = {}
    for name, case in CASES.items():
        if only and name not in only:
            continue
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="dabai-fault-") as tmp, RelayRecorder() as relay:
            rig = Rig(Path(tmp), relay)
            try:
                row = case(rig)
            except Exception as exc:  # a case that cannot run is reported, not hidden
                row = {"expected": False, "error": "{}: {}".format(type(exc).__name__, exc)}
            finally:
                rig.kill_all()
        row["seconds"] = round(time.monotonic() - t0, 1)
        results[name] = row
        if echo is not None:
            echo("{:<42} {}".format(name, "skipped: " + row["skipped"] if "skipped" in row else
                                    ("as expected" if row.get("expected") else "NOT AS EXPECTED") +
                                    "  gate={} reported={} found={} exit={}".format(
                                        row.get("gate_after"), row.get("records_reported"), row.get("records_found"),
                                        row.get("exit"))))
    ran = [r for r in results.values() if "skipped" not in r]
    summary: Dict[str, Any] = {
        "cases": len(results),
        "as_expected": sum(1 for r in ran if r.get("expected")),
        "skipped": len(results) - len(ran),
        "gate_left_open": sum(1 for r in ran if r.get("gate_after") == "on"),
        "records_lost": sum(int(r.get("records_lost") or 0) for r in ran),
        "tracebacks": sum(1 for r in ran if r.get("traceback")),
    }
    report: Dict[str, Any] = {"summary": summary, "cases": results}
    if fuzz:
        from kiosk.bench.passfuzz import run_pass_fuzz

        report["pass_fuzz"] = run_pass_fuzz(fuzz)
    return report
