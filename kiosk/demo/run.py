"""The bundled demo: scenarios played through the real pipeline, headless.

Each scenario is a rendered camera stream (and, where the resident speaks, scripted sentences
at set times). Frames go through the same capture thread, detector, QR reader, pass verifier,
decision core, gate driver, voice and access log as a live kiosk; only the clock is the
stream's own (media time), so runs are reproducible on a busy machine.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.bench import timing_summary
from kiosk.config import Config, Home, save_config
from kiosk.config import replace as config_replace
from kiosk.core.events import Action, Heard, Say, Show, Tick
from kiosk.core.machine import Phase, State
from kiosk.demo.annotate import annotate
from kiosk.demo.scenes import Shot, render
from kiosk.gate.drivers import GateDriver
from kiosk.runtime.assemble import Parts, assemble
from kiosk.runtime.kiosk import Kiosk
from kiosk.speech.intent import intent_of
from kiosk.store.passes import create_keys, issue_pass, key_id, sign_token
from kiosk.vision.capture import Capture
from kiosk.vision.sources import ArraySource
from kiosk.vision.worker import FrameResult, VisionWorker

log = logging.getLogger(__name__)

FPS = 10.0
REQUEST = "你好大白，请让我进入小区"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    expected: str  # "granted", "denied", "abandoned"
    expected_reason: str
    shots: Tuple[Shot, ...]
    frames: int
    speech: Tuple[Tuple[float, str], ...] = ()


@dataclass
class Outcome:
    scenario: Scenario
    outcome: str
    reason: str
    gate_opened: bool
    decisions: List[Dict[str, Any]]
    timeline: List[Tuple[float, str, str]]
    latencies_ms: List[float]
    vision_ms: List[float]
    stage_ms: Dict[str, List[float]] = field(default_factory=dict)  # detect_ms, qr_ms per frame
    frames: List[np.ndarray] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.outcome, self.reason) == (self.scenario.expected, self.scenario.expected_reason)


# ---- the community of the demo ------------------------------------------------------------------


def prepare_home(home: Home, models_from: Optional[Path], speech_dir: Path) -> Dict[str, str]:
    """A fresh data home with keys, residents and their passes; returns the pass tokens by name."""
    from kiosk.models.catalog import fetch
    from kiosk.models.selection import is_catalogue_name

    if home.root.exists():
        shutil.rmtree(str(home.root))
    home.root.mkdir(parents=True)
    config = config_replace(Config(), "speech", output="wav:{}".format(speech_dir))
    config = config_replace(config, "camera", source="demo")
    save_config(config, home.config)
    if models_from is not None and is_catalogue_name(config.vision.face_model):
        # a third-party face model (YuNet) is installed; a file of the repository (engines/) is used in place
        fetch([config.vision.face_model], home.models, from_dir=models_from)
    key = create_keys(home.private_key, home.public_key)

    from kiosk.store.db import Database
    from kiosk.store.registry import Registry

    db = Database(home.database)
    try:
        registry = Registry(db)
        now = time.time()
        zhang = registry.add("张三", "3-201")
        li = registry.add("李四", "5-502")
        wang = registry.add("王五", "1-101")
        tokens = {
            "zhang": issue_pass(registry, key, zhang.id, 365, now)[1],
            "li": issue_pass(registry, key, li.id, 365, now)[1],
            "wang": issue_pass(registry, key, wang.id, 365, now)[1],
            "zhang_expired": issue_pass(registry, key, zhang.id, 30, now - 40 * 86400)[1],
        }
        registry.revoke(str(wang.id))  # moved out: their pass is genuine but no longer honoured
        stranger = Ed25519PrivateKey.generate()
        # Forged: claims this community's key but is signed by someone else's.
        tokens["forged"] = sign_token(
            stranger, zhang.id, 99, int(now), int(now + 86400), claimed_key_id=key_id(key.public_key())
        )
        tokens["other_community"] = sign_token(stranger, 1, 7, int(now), int(now + 86400))
    finally:
        db.close()
    return tokens


def scenarios(tokens: Dict[str, str]) -> List[Scenario]:
    def walk_up(mask: str, person: str = "person1", code: Optional[str] = None, blurred_until: int = 0) -> Tuple[Shot, ...]:
        shots = [Shot(2, 34, person=(person, mask))]
        if code is not None:
            if blurred_until:
                shots.append(Shot(9, blurred_until, code=code, blurred=True))
            shots.append(Shot(blurred_until or 9, 30, code=code))
        return tuple(shots)

    # Saying the request takes ~3.5 s and the kiosk has it ~0.5 s after the last word, so in the
    # scenarios that speak, the pass comes out only after that.
    talk_then_pass = (Shot(2, 75, person=("person1", "with_mask")), Shot(52, 70, code=tokens["zhang"]))
    return [
        Scenario("granted", "张三戴好口罩，说出请求并出示有效通行码", "granted", "ok", talk_then_pass, 95,
                 ((0.3, REQUEST),)),
        Scenario("no_mask", "未戴口罩", "denied", "no_mask", walk_up("without_mask", code=tokens["zhang"]), 60),
        Scenario("mask_incorrect", "口罩未遮住鼻子", "denied", "mask_incorrect",
                 walk_up("mask_weared_incorrect", code=tokens["zhang"]), 60),
        Scenario("forged_pass", "伪造的通行码", "denied", "bad_signature",
                 walk_up("with_mask", "person2", code=tokens["forged"]), 60),
        Scenario("expired_pass", "过期的通行码", "denied", "expired",
                 walk_up("with_mask", code=tokens["zhang_expired"]), 60),
        Scenario("revoked_resident", "已停用住户的通行码", "denied", "resident_revoked",
                 walk_up("with_mask", "person2", code=tokens["wang"]), 60),
        Scenario("other_community", "其他小区的通行码", "denied", "wrong_community",
                 walk_up("with_mask", "person2", code=tokens["other_community"]), 60),
        Scenario("unreadable_then_readable", "二维码先模糊后清晰", "granted", "ok",
                 walk_up("with_mask", "person2", code=tokens["li"], blurred_until=18), 60),
        Scenario("person_leaves", "说出请求后未出示通行码便离开", "abandoned", "left",
                 (Shot(2, 60, person=("person1", "with_mask")),), 95, ((0.3, REQUEST),)),
    ]


# ---- the resident's voice --------------------------------------------------------------------------


class Ears:
    """Turns what a scenario's resident says into ``Heard`` events the way the kiosk hears them:
    the sentence is spoken into a wav (espeak-ng) and that wav goes through the microphone path
    (16 kHz, Silero VAD, the configured recognizer, intent). Each event comes with the time, from
    the start of speaking, at which the kiosk would have it (utterance end + processing)."""

    def __init__(self, parts: Parts, folder: Path) -> None:
        from kiosk.audio.vad import create_vad
        from kiosk.speech import EspeakVoice
        from kiosk.speech.recognizers import create_recognizer

        listen = parts.config.listen
        self.listen = listen
        self.folder = folder
        self.voice = EspeakVoice(pitch=35, speed=150)  # a resident: lower and slower than the kiosk
        self.vad = create_vad(listen.vad, listen.vad_model)
        self.recognizer = create_recognizer(listen.recognizer, listen.model, parts.home.models)
        self.name = "{} + {}".format(self.recognizer.name, type(self.vad).__name__)

    def hear(self, text: str) -> List[Tuple[float, Heard]]:
        from kiosk.audio.sources import WavFileSource
        from kiosk.speech.listen import SpeechPipeline, listen_through, matcher_from_config, segmenter_settings

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "{:08x}.wav".format(abs(hash(text)) % (1 << 32))
        if not path.exists():
            self.voice.synthesize(text).save(str(path))
        self.vad.reset()
        pipeline = SpeechPipeline(self.vad, self.recognizer, matcher_from_config(self.listen),
                                  segmenter_settings(self.listen), early_intent=self.listen.early_intent)
        heard = listen_through(pipeline, WavFileSource(str(path)).chunks())
        return [
            (r.end_s + r.end_to_intent_ms / 1000.0, Heard(r.text or "", r.intent))  # speech end + hangover + work
            for r in heard if r.text
        ]


# ---- one scenario ---------------------------------------------------------------------------------


def schedule_speech(kiosk: Kiosk, scenario: Scenario, ears: Optional[Ears]) -> None:
    """The resident's scripted sentences at their times: heard through the microphone path when there
    are ``ears`` (synthesized, VAD, recognizer), else handed to the core as text."""
    for at, text in scenario.speech:
        if ears is None:
            kiosk.schedule(Heard(text, intent_of(text)), at)
            continue
        for delay, event in ears.hear(text):
            kiosk.schedule(event, at + delay)


def play(
    parts: Parts,
    scenario: Scenario,
    keep_frames: bool = True,
    ears: Optional[Ears] = None,
    paced: bool = False,
    on_frame: Optional[Callable[[FrameResult], None]] = None,
    listeners: Sequence[Callable[[Action, State], None]] = (),
    halt: Optional[threading.Event] = None,
    gate: Optional[GateDriver] = None,
) -> Outcome:
    """Run one scenario through capture → vision → core → gate/voice/log and collect what happened.
    With ``ears`` the resident's sentences go through the microphone path; without, they arrive as text.

    By default every frame is taken as fast as it can be and the clock runs on in media time after the
    last one. ``paced`` plays it like a live camera instead (the scenario's frame rate, newest frame
    only, then :func:`run_on_in_real_time`), as the window does. Each frame's result also goes to
    ``on_frame``, each action to ``listeners``; ``halt`` ends the scenario early; ``gate`` stands in
    for ``parts.gate``."""
    from kiosk.runtime.assemble import build_qr_reader

    config = parts.config
    kiosk = Kiosk(config, parts.gate if gate is None else gate, parts.speaker, parts.store.access_log,
                  media_clock=True)
    banner = {"screen": "idle", "prompt": ""}

    def on_action(action: Any, state: Any) -> None:
        if isinstance(action, Show):
            banner["screen"] = action.screen
            if action.screen == "idle":
                banner["prompt"] = ""
        elif isinstance(action, Say):
            banner["prompt"] = action.text

    kiosk.listeners.append(on_action)
    kiosk.listeners.extend(listeners)
    frames = render(list(scenario.shots), scenario.frames, seed=hash(scenario.name) % 1000)
    capture = Capture(lambda: ArraySource(frames, FPS, scenario.name), media_clock=True, lossless=not paced,
                      paced=paced)
    annotated: List[np.ndarray] = []
    seen: Dict[int, str] = {}

    stage_ms: Dict[str, List[float]] = {}

    def on_result(result: FrameResult) -> None:
        for stage, ms in result.timings.items():
            stage_ms.setdefault(stage, []).append(ms)
        for face in result.faces:
            label = "{} {:.2f}".format(face.mask.value, face.confidence)
            if seen.get(face.track_id, "").split(" ")[0] != face.mask.value:
                kiosk.note("seen", "face #{} {} (h={}px)".format(face.track_id, label, face.height), result.frame.t)
            seen[face.track_id] = label
        if keep_frames:
            annotated.append(annotate(result, banner["screen"], banner["prompt"], scenario.title))
        if on_frame is not None:
            on_frame(result)

    worker = VisionWorker(capture, parts.detector, build_qr_reader(config), parts.check_pass, kiosk.post, on_result)
    halt = threading.Event() if halt is None else halt  # never set: the scenario plays to its end
    schedule_speech(kiosk, scenario, ears)
    kiosk.start()
    capture.start()
    worker.start()
    while worker.is_alive() and not halt.is_set():
        worker.join(0.1)
    worker.stop()
    capture.stop()
    worker.join(5)
    capture.join(5)
    kiosk.drain()
    policy = config.policy
    end = scenario.frames / FPS + policy.result_hold_s + policy.cooldown_s + policy.left_after_s + 0.5
    if paced:
        run_on_in_real_time(kiosk, scenario.frames / FPS, end, halt)
    else:
        kiosk.finish_media(end)
    kiosk.stop()

    decisions = [dict(decision.__dict__, t=round(t, 2)) for t, decision in kiosk.decisions]
    first = kiosk.decisions[0][1] if kiosk.decisions else None
    return Outcome(
        scenario=scenario,
        outcome=first.outcome if first else "none",
        reason=first.reason if first else "",
        gate_opened=any(d.gate_opened for _, d in kiosk.decisions),
        decisions=decisions,
        timeline=[(e.t, e.kind, e.text) for e in sorted(kiosk.timeline, key=lambda e: e.t)],
        latencies_ms=list(kiosk.latencies_ms),
        vision_ms=list(worker.step_ms),
        stage_ms=stage_ms,
        frames=annotated,
    )


def run_on_in_real_time(kiosk: Kiosk, t: float, until: float, halt: threading.Event, step_s: float = 0.1) -> None:
    """The paced counterpart of ``Kiosk.finish_media``: after the last frame (media time ``t``) the clock
    runs on in real time until the result has been shown and the kiosk is idle again, or ``until`` (the
    longest the policy can take), or ``halt``."""
    decided = False
    while t < until and not halt.is_set():
        t += step_s
        kiosk.post(Tick(), t)
        halt.wait(step_s)
        decided = decided or bool(kiosk.decisions)
        if decided and kiosk.state.phase == Phase.IDLE:
            break
    kiosk.drain()


# ---- the whole demo -------------------------------------------------------------------------------


def format_timeline(outcome: Outcome) -> str:
    sc = outcome.scenario
    lines = ["== {} — {}".format(sc.name, sc.title)]
    for t, kind, text in outcome.timeline:
        if kind == "show":
            continue
        lines.append("  {:6.2f}s  {:<8} {}".format(t, kind, text))
    verdict = "as expected" if outcome.passed else "UNEXPECTED (wanted {} {})".format(sc.expected, sc.expected_reason)
    lines.append("  => {} ({}), gate {} — {}".format(
        outcome.outcome, outcome.reason, "opened" if outcome.gate_opened else "stayed closed", verdict))
    return "\n".join(lines)


def write_video(frames: List[np.ndarray], out: Path) -> List[str]:
    """An MP4 of every annotated frame and a smaller GIF; returns the files written."""
    from PIL import Image

    written = []
    if not frames:
        return written
    h, w = frames[0].shape[:2]
    mp4 = out / "demo.mp4"
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    if writer.isOpened():
        for frame in frames:
            writer.write(frame)
        writer.release()
        written.append(str(mp4))
    step = 3  # a third of the frames at half size keeps the GIF a few MB
    small = [
        Image.fromarray(cv2.cvtColor(cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
        .quantize(colors=128)
        for f in frames[::step]
    ]
    gif = out / "demo.gif"
    small[0].save(str(gif), save_all=True, append_images=small[1:], duration=int(step * 1000 / FPS), loop=0)
    written.append(str(gif))
    return written


def write_summary(outcomes: List[Outcome], out: Path, columns: int = 3) -> Optional[str]:
    """One still per scenario, a moment after its decision, in a grid (summary.jpg)."""
    stills = []
    for outcome in outcomes:
        if not outcome.frames:
            continue
        decided_at = outcome.decisions[0]["t"] if outcome.decisions else outcome.scenario.frames / FPS
        index = min(len(outcome.frames) - 1, int(round(decided_at * FPS)) + 2)
        stills.append(cv2.resize(outcome.frames[index], (320, 240), interpolation=cv2.INTER_AREA))
    if not stills:
        return None
    blank = np.zeros_like(stills[0])
    stills += [blank] * (-len(stills) % columns)
    rows = [np.hstack(stills[i : i + columns]) for i in range(0, len(stills), columns)]
    path = out / "summary.jpg"
    cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return str(path)


def run_demo(
    out: Path,
    models_from: Optional[Path],
    only: Optional[List[str]] = None,
    repeat: int = 1,
    write_media: bool = True,
    echo: bool = True,
) -> Dict[str, Any]:
    """Play the scenarios (``repeat`` times each) and write report.json (+ video) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    speech_dir = out / "speech"
    if speech_dir.exists():
        shutil.rmtree(str(speech_dir))
    home = Home((out / "home").resolve())
    tokens = prepare_home(home, models_from, speech_dir)
    parts = assemble(home)
    for problem in parts.problems:
        print("problem: {}".format(problem), file=sys.stderr)
    chosen = [s for s in scenarios(tokens) if not only or s.name in only]
    ears: Optional[Ears] = None
    try:
        ears = Ears(parts, out / "resident_voice")
        if echo:
            print("the resident's sentences are spoken and heard through {}".format(ears.name))
    except Exception as exc:  # no voice, VAD or recognizer: the sentences arrive as text instead
        print("problem: no voice input for the demo ({}); sentences arrive as text".format(exc), file=sys.stderr)
    results: List[Outcome] = []
    frames: List[np.ndarray] = []
    timeline_text = []
    try:
        for round_ in range(repeat):
            for scenario in chosen:
                outcome = play(parts, scenario, keep_frames=write_media and round_ == 0, ears=ears)
                results.append(outcome)
                frames.extend(outcome.frames)
                if round_ == 0:
                    text = format_timeline(outcome)
                    timeline_text.append(text)
                    if echo:
                        print(text, flush=True)
        wait_idle = getattr(parts.speaker, "wait_idle", None)
        if wait_idle is not None:
            wait_idle(30)
    finally:
        parts.close()
    latencies = [ms for r in results for ms in r.latencies_ms]
    vision = [ms for r in results for ms in r.vision_ms]
    first_round = results[: len(chosen)]
    report: Dict[str, Any] = {
        "scenarios": [
            {
                "name": r.scenario.name,
                "expected": r.scenario.expected,
                "expected_reason": r.scenario.expected_reason,
                "outcome": r.outcome,
                "reason": r.reason,
                "gate_opened": r.gate_opened,
                "passed": r.passed,
                "decisions": r.decisions,
            }
            for r in first_round
        ],
        "all_passed": all(r.passed for r in results),
        "decision_latency_ms": timing_summary(latencies),
        "vision_step_ms": timing_summary(vision),
        "vision_stage_ms": {
            stage: timing_summary([ms for r in results for ms in r.stage_ms.get(stage, [])]) for stage in ("detect_ms", "qr_ms")
        },
        "problems": parts.problems,
    }
    if write_media:
        summary = write_summary(first_round, out)
        report["media"] = write_video(frames, out) + ([summary] if summary else [])
    (out / "timeline.txt").write_text("\n\n".join(timeline_text) + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return report
