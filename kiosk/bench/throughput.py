"""Residents per minute through one kiosk: a closed-loop queue of masked residents with passes, live.

As at a real gate, one resident at a time steps up wearing a mask, raises their phone with their own
signed pass, and walks away once the gate has opened; the next one steps up as soon as the one before
is out of view (a queue does not wait for the kiosk's result screen: the decision core serves a new
person ``policy.next_person_after_s`` after a result). The camera is
live: frames are rendered on the fly at the camera rate from what is in front of it, the capture
thread keeps only the newest, and the kiosk runs on its own live clock, so every figure includes the
real waits (frame cadence, vision, the decider's queue, the policy's hold and cooldown).

Everything between the camera and the gate is the kiosk's own: capture thread, detector, QR reader,
pass verifier (Ed25519 + registry), decision core, simulated gate, voice and access log.

With a soak time the queue keeps going round (each registered resident comes back) for that long
and the process's memory, threads and open files are sampled, to catch leaks.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from kiosk.bench import timing_summary
from kiosk.config import Home, load_config
from kiosk.config import replace as config_replace
from kiosk.core.events import Log, OpenGate
from kiosk.demo.scenes import H, W, load_person, lobby, paste, phone_with_code, tilt
from kiosk.vision.sources import FrameSource

log = logging.getLogger(__name__)

FPS = 15.0  # the kiosk camera's rate (camera.fps)
WALK_IN_FRAMES = 8  # the last step up to the kiosk: closer (the face grows by a sixth) and in from the side
WALK_OUT_FRAMES = 6  # walking off once the gate has opened
GOAL_PER_MINUTE = 30.0
GOAL_DECISION_P95_MS = 150.0
GOAL_RSS_GROWTH_PCT = 5.0

SURNAMES = "张李王刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华"


def resident_names(count: int) -> List[str]:
    """``count`` different Chinese names (surname + given name; numbered once those run out)."""
    names = [s + g for g in GIVEN for s in SURNAMES]
    return [names[i % len(names)] + ("" if i < len(names) else str(i // len(names))) for i in range(count)]


def register_residents(home: Home, count: int, now: float) -> List[Tuple[str, str]]:
    """Add ``count`` residents to the data home's registry, each with a year's pass; (name, token) each."""
    from kiosk.store.db import Database
    from kiosk.store.passes import issue_pass, load_private_key
    from kiosk.store.registry import Registry

    key = load_private_key(home.private_key)
    db = Database(home.database)
    try:
        registry = Registry(db)
        people = []
        for i, name in enumerate(resident_names(count)):
            resident = registry.add(name, "{}-{}{:02d}".format(1 + i % 9, 1 + i // 9 % 6, 1 + i % 4))
            people.append((name, issue_pass(registry, key, resident.id, 365, now)[1]))
    finally:
        db.close()
    return people


# ---- who is in front of the camera ----------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """How one resident appears: which of the demo's masked people (person1: surgical mask, person2:
    cloth mask), mirrored or not, how big and where, the light, and how they hold their phone."""

    person: str
    mirrored: bool
    width: int  # of the head-and-shoulders image, px (faces ~90-140 px tall)
    x: int  # standing position, from the centre
    gain: float  # light on the person
    from_left: bool  # steps up from the left, leaves to the right
    phone_width: int
    phone_x: int
    phone_y: int
    phone_tilt: float  # degrees
    phone_after: int  # frames after arriving before the phone is up


def random_look(rng: np.random.Generator) -> Look:
    return Look(
        person=str(rng.choice(["person1", "person2"])),
        mirrored=bool(rng.random() < 0.5),
        width=int(rng.integers(230, 341)),
        x=int(rng.integers(-110, 31)),
        gain=float(rng.uniform(0.85, 1.12)),
        from_left=bool(rng.random() < 0.5),
        phone_width=int(rng.choice([150, 160, 170, 180])),
        phone_x=int(rng.integers(400, 461)),
        phone_y=int(rng.integers(110, 161)),
        phone_tilt=float(rng.uniform(6, 16)),
        phone_after=int(rng.integers(1, 7)),
    )


@dataclass
class Visit:
    """One resident's turn at the kiosk (times are time.perf_counter(), like Frame.wall)."""

    name: str
    look: Look
    stepped_up: float
    frames: int = 0  # frames rendered with this resident in front
    gate_at: Optional[float] = None
    outcome: str = "none"
    reason: str = "no decision"
    decided_for: Optional[str] = None  # the resident name on the decision
    left_at: Optional[int] = None  # frame at which they started walking off
    ready_at: Optional[float] = None  # the next person stepped up

    @property
    def granted(self) -> bool:
        """Let in on their own pass."""
        return self.outcome == "granted" and self.decided_for == self.name


class QueueCamera(FrameSource):
    """A live camera on the gate whose picture follows the queue: it paces itself to ``fps`` (as a camera
    does) and renders each frame from who is in front now. The kiosk's actions reach it through
    :meth:`on_action` (a ``Kiosk.listeners`` entry); ``ready()`` says the kiosk takes a new person.

    The queue moves on while ``keep_going(visits_so_far, seconds_since_first)`` says so; then ``done`` is
    set as soon as the kiosk is ready after the last resident."""

    live = True
    name = "queue"

    def __init__(
        self,
        residents: List[Tuple[str, str]],
        ready: Callable[[], bool],
        keep_going: Callable[[int, float], bool],
        fps: float = FPS,
        seed: int = 0,
        give_up_s: float = 30.0,
    ) -> None:
        self.residents = residents
        self.ready = ready
        self.keep_going = keep_going
        self.fps = fps
        self.give_up_s = give_up_s
        self.rng = np.random.default_rng(seed)
        self.lobbies = [lobby(seed + i) for i in range(3)]
        self.visits: List[Visit] = []
        self.current: Optional[Visit] = None
        self.stray: List[Tuple[str, str]] = []  # decisions when nobody was waiting for one
        self.done = threading.Event()
        self.ended_at: Optional[float] = None
        self._lock = threading.Lock()
        self._due: Optional[float] = None
        self._index = 0
        self._person: Optional[np.ndarray] = None
        self._phone: Optional[np.ndarray] = None

    # ---- the kiosk's side (decider thread) ------------------------------------------------------

    def on_action(self, action: Any, state: Any) -> None:
        now = time.perf_counter()
        with self._lock:
            visit = self.visits[-1] if self.visits else None
            if isinstance(action, OpenGate) and visit is not None and visit.gate_at is None:
                visit.gate_at = now
            elif isinstance(action, Log):
                decision = action.decision
                if visit is None or visit.outcome != "none":
                    self.stray.append((decision.outcome, decision.reason))
                    return
                visit.outcome, visit.reason, visit.decided_for = decision.outcome, decision.reason, decision.resident_name

    # ---- the camera's side (capture thread) -----------------------------------------------------

    def read(self) -> Optional[np.ndarray]:
        self._wait_for_frame_time()
        frame = self.lobbies[self._index % len(self.lobbies)].copy()
        self._index += 1
        with self._lock:  # what the kiosk has done so far decides who is in front
            self._move_queue()
        visit = self.current
        if visit is not None:
            self._draw(frame, visit)
            visit.frames += 1
        return frame

    def _wait_for_frame_time(self) -> None:
        now = time.perf_counter()
        if self._due is None or now - self._due > 1.0 / self.fps:  # late by a frame or more: drop, as a camera does
            self._due = now
        elif self._due > now:
            time.sleep(self._due - now)
        self._due += 1.0 / self.fps

    def _move_queue(self) -> None:
        visit = self.current
        now = time.perf_counter()
        if visit is not None:
            if visit.left_at is None and (visit.outcome != "none" or now - visit.stepped_up > self.give_up_s):
                visit.left_at = visit.frames  # decided (or gave up): phone down, walk off
            if visit.left_at is not None and visit.frames - visit.left_at >= WALK_OUT_FRAMES:
                self.current = None  # out of view
            return
        if self.done.is_set() or not self.ready():
            return
        if self.visits and self.visits[-1].ready_at is None:
            self.visits[-1].ready_at = now
        since_first = now - self.visits[0].stepped_up if self.visits else 0.0
        if not self.keep_going(len(self.visits), since_first):
            self.ended_at = now
            self.done.set()
            return
        name, token = self.residents[len(self.visits) % len(self.residents)]
        look = random_look(self.rng)
        person = load_person(look.person, "with_mask")
        if look.mirrored:
            person = cv2.flip(person, 1)
        scale = look.width / person.shape[1]
        person = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        person[..., :3] = np.clip(person[..., :3] * look.gain, 0, 255).astype(np.uint8)
        self._person = person
        self._phone = phone_with_code(token, width=look.phone_width)
        self.current = Visit(name, look, now)
        self.visits.append(self.current)

    def _draw(self, frame: np.ndarray, visit: Visit) -> None:
        assert self._person is not None and self._phone is not None
        look, i = visit.look, visit.frames
        person = self._person
        side = -1 if look.from_left else 1
        x = look.x + int(round(3 * np.sin(i * 0.7)))  # from the centre; standing, they sway a little
        top = H - person.shape[0] + 10  # where the head is when they stand at the kiosk
        if i < WALK_IN_FRAMES:  # stepping up: coming closer (growing about the head) and in from the side
            scale = 0.85 + 0.15 * i / WALK_IN_FRAMES
            top += int(person.shape[0] * (1 - scale) * 0.4)  # the face is 0.4 of the way down the image
            person = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            x += side * 6 * (WALK_IN_FRAMES - i)
        leaving = visit.left_at is not None
        if leaving:  # through the gate, off to the other side
            x -= side * 80 * (i - visit.left_at + 1)  # type: ignore[operator]
        paste(frame, person, (W - person.shape[1]) // 2 + x, top)
        if not leaving and i >= WALK_IN_FRAMES + look.phone_after:
            phone = tilt(self._phone, look.phone_tilt + 3 * np.sin(i * 0.5))
            paste(frame, phone, look.phone_x + int(round(2 * np.cos(i * 0.6))), look.phone_y)


# ---- the process ----------------------------------------------------------------------------------


def process_status() -> Dict[str, float]:
    """This process's resident memory (MB), threads and open file descriptors, from /proc (Linux)."""
    status: Dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key == "VmRSS":
                    status["rss_mb"] = round(int(value.split()[0]) / 1024.0, 1)
                elif key == "Threads":
                    status["threads"] = int(value)
        status["open_fds"] = len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: no figures
        pass
    return status


def process_report(samples: List[Tuple[float, Dict[str, float]]], warmup_s: float) -> Dict[str, Any]:
    """Start / after warm-up / end / max of each sampled figure and the RSS growth after the warm-up."""
    if not samples or "rss_mb" not in samples[0][1]:
        return {"samples": []}
    warm = next((s for t, s in samples if t >= warmup_s), None)
    report: Dict[str, Any] = {"warmup_s": warmup_s}
    for key in ("rss_mb", "threads", "open_fds"):
        values = [s[key] for _, s in samples]
        report[key] = {"start": values[0], "after_warmup": warm[key] if warm else None, "end": values[-1],
                       "max": max(values)}
    end = samples[-1][1]["rss_mb"]
    report["rss_growth_pct"] = round(100.0 * (end - warm["rss_mb"]) / warm["rss_mb"], 2) if warm else None
    report["samples"] = [[round(t, 1), s["rss_mb"], s["threads"], s["open_fds"]] for t, s in samples]
    return report


# ---- the run --------------------------------------------------------------------------------------


def run_throughput(
    out: Path,
    models_from: Optional[Path],
    residents: int = 200,
    soak_minutes: float = 0.0,
    warmup_minutes: float = 2.0,
    fps: float = FPS,
    seed: int = 0,
    policy: Optional[Dict[str, Any]] = None,
    sample_s: float = 10.0,
) -> Dict[str, Any]:
    """Register ``residents`` residents with passes in a fresh data home under ``out`` and let them through
    one kiosk, one after another (``soak_minutes``: round and round for that long); returns the report,
    also written to ``out/report.json``. ``policy`` changes policy keys (default: the shipped policy)."""
    from kiosk.demo.run import prepare_home
    from kiosk.gate.drivers import SimulatedGate
    from kiosk.runtime.assemble import assemble

    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    home = Home((out / "home").resolve())
    prepare_home(home, models_from, out / "speech")
    people = register_residents(home, residents, time.time())
    config = config_replace(load_config(home.config), "speech", output="none")  # spoken, not played
    if policy:
        config = config_replace(config, "policy", **policy)
    gate = SimulatedGate()
    parts = assemble(home, config, gate=gate)
    try:
        report = _run(parts, gate, people, soak_minutes * 60.0, warmup_minutes * 60.0, fps, seed, sample_s)
    finally:
        parts.close()
    report["problems"] = parts.problems
    cache = getattr(parts.speaker, "cache", None)  # greetings name the resident: each is synthesized and kept
    if cache is not None:
        report["voice"] = {"name": cache.voice.name, "synthesized": cache.misses,
                           "in_memory_mb": round(cache.memory_bytes / 1e6, 1),
                           "memory_budget_mb": round(cache.max_memory_bytes / 1e6, 1)}
    report["machine"] = {"cpu_count": os.cpu_count(), "load_average_start": [round(v, 2) for v in load_start],
                         "load_average_end": [round(v, 2) for v in os.getloadavg()]}
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    return report


def _run(parts: Any, gate: Any, people: List[Tuple[str, str]], soak_s: float, warmup_s: float, fps: float,
         seed: int, sample_s: float) -> Dict[str, Any]:
    from kiosk.runtime.assemble import build_qr_reader
    from kiosk.runtime.kiosk import Kiosk
    from kiosk.vision.capture import Capture
    from kiosk.vision.worker import FrameResult, VisionWorker

    config = parts.config
    kiosk = Kiosk(config, gate, parts.speaker, parts.store.access_log)  # the live clock

    def keep_going(visits: int, since_first: float) -> bool:
        return since_first < soak_s if soak_s > 0 else visits < len(people)

    give_up_s = config.policy.engaged_timeout_s + config.policy.left_after_s + 5.0
    camera = QueueCamera(people, lambda: True, keep_going, fps, seed, give_up_s)  # the queue steps up at once
    kiosk.listeners.append(camera.on_action)
    capture = Capture(lambda: camera)  # live: newest frame only
    timings: Dict[str, array] = {"step": array("d"), "detect_ms": array("d"), "qr_ms": array("d")}

    def on_result(result: FrameResult) -> None:
        timings["step"].append(result.ms)
        for stage, ms in result.timings.items():
            if stage in timings:
                timings[stage].append(ms)

    worker = VisionWorker(capture, parts.detector, build_qr_reader(config), parts.check_pass, kiosk.post, on_result)
    access_log = parts.store.access_log
    started_ts = time.time()
    pulses_before = len(gate.pulses)
    kiosk.start()
    capture.start()
    worker.start()
    t0 = time.perf_counter()
    samples = [(0.0, process_status())]
    while not camera.done.wait(sample_s):
        samples.append((time.perf_counter() - t0, process_status()))
        if not worker.is_alive() or not capture.is_alive():
            log.error("throughput: the pipeline stopped")
            break
    samples.append((time.perf_counter() - t0, process_status()))
    worker.stop()
    capture.stop()
    worker.join(5)
    capture.join(5)
    kiosk.drain()
    kiosk.stop()
    access_log.flush()

    visits = camera.visits
    records = access_log.list(limit=10 * len(visits) + 100, since=started_ts)
    first = visits[0].stepped_up if visits else t0
    elapsed = (camera.ended_at or time.perf_counter()) - first
    granted = sum(1 for v in visits if v.granted)
    ends = [v.stepped_up for v in visits[1:]] + [camera.ended_at or time.perf_counter()]
    policy = config.policy
    per_minute = round(60.0 * len(visits) / elapsed, 2) if elapsed > 0 else 0.0
    latency = timing_summary(list(kiosk.latencies_ms))
    report: Dict[str, Any] = {
        "residents": len(visits),
        "registered": len(people),
        "granted": granted,
        "not_granted": [{"resident": v.name, "visit": n, "outcome": v.outcome, "reason": v.reason,
                         "decided_for": v.decided_for, "look": asdict(v.look)}
                        for n, v in enumerate(visits) if not v.granted][:50],
        "stray_decisions": camera.stray[:50],
        "elapsed_s": round(elapsed, 1),
        "residents_per_minute": per_minute,
        "decision_latency_ms": latency,
        "step_up_to_gate_ms": timing_summary([(v.gate_at - v.stepped_up) * 1000 for v in visits if v.gate_at]),
        "gate_to_next_person_ms": timing_summary([(v.ready_at - v.gate_at) * 1000 for v in visits if v.gate_at and v.ready_at]),
        "cycle_s": timing_summary([end - v.stepped_up for v, end in zip(visits, ends)], digits=2),
        "vision_step_ms": timing_summary(timings["step"]),
        "vision_stage_ms": {stage: timing_summary(timings[stage]) for stage in ("detect_ms", "qr_ms")},
        "frames": {"camera_fps": fps, "captured": capture.frames, "processed": len(timings["step"])},
        "gate_pulses": len(gate.pulses) - pulses_before,
        "log_records": len(records),
        "log_granted": sum(1 for r in records if r["outcome"] == "granted" and r["gate_opened"]),
        "log_pending": access_log.pending,
        "policy": {"result_hold_s": policy.result_hold_s, "cooldown_s": policy.cooldown_s,
                   "vote_window": policy.vote_window, "vote_min": policy.vote_min,
                   "next_person_after_s": policy.next_person_after_s,
                   # a different person is taken next_person_after_s after a decision (or after hold + cooldown)
                   "ceiling_per_minute": round(60.0 / max(min(policy.next_person_after_s,
                                                              policy.result_hold_s + policy.cooldown_s), 1e-6), 1)},
        "goals": {"residents_per_minute": GOAL_PER_MINUTE, "per_minute_met": per_minute >= GOAL_PER_MINUTE,
                  "decision_p95_ms": GOAL_DECISION_P95_MS,
                  "decision_p95_met": latency.get("p95", float("inf")) <= GOAL_DECISION_P95_MS},
        "process": process_report(samples, warmup_s),
    }
    if soak_s > 0:
        growth = report["process"].get("rss_growth_pct")
        report["soak_minutes"] = round(soak_s / 60.0, 2)
        report["goals"].update(rss_growth_pct=GOAL_RSS_GROWTH_PCT,
                               rss_growth_met=None if growth is None else growth < GOAL_RSS_GROWTH_PCT)
    report["all_granted"] = (
        granted == len(visits) > 0 and report["gate_pulses"] == len(visits) == report["log_records"]
    )
    return report
