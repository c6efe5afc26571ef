"""The running kiosk: edges feed events to the pure decision core; its actions reach the devices.

    capture thread → vision worker ─┐
    microphone / scripted speech ───┼─> event queue ─> decider thread: step() ─> say / show / open gate / log
    ticker (live clock) ────────────┘

Only the decider thread touches the core's state, so the core needs no locks. The gate opens
before anything is spoken; every decision reaches the access log (which never loses one).

A kiosk runs for months: its histories (timeline, decisions, latencies) keep only their newest entries, far
more than one demo scenario or benchmark run makes. Whoever wants every entry as it happens (the journal on
stdout) subscribes with ``note_listeners`` instead of reading the timeline by index.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from kiosk.config import Config
from kiosk.core.events import Action, Decision, Event, Heard, Log, OpenGate, PassPresented, Say, Show, Tick
from kiosk.core.machine import State, step
from kiosk.core.prompts import PROMPTS
from kiosk.gate.drivers import GateDriver
from kiosk.store.accesslog import AccessLog
from kiosk.vision.capture import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimelineEntry:
    t: float  # the gate's clock
    kind: str  # camera, seen, heard, pass, say, show, gate, decided, error
    text: str


def timeline_echo(write: Callable[[str], None]) -> Callable[[TimelineEntry], None]:
    """A ``note_listeners`` entry that writes each timeline entry (except screen changes) as one line with the
    wall-clock time: the headless kiosk's stdout, the app's journal under systemd."""

    def echo(entry: TimelineEntry) -> None:
        if entry.kind != "show":
            write("{}  {:<8} {}".format(time.strftime("%H:%M:%S"), entry.kind, entry.text))

    return echo


class Kiosk:
    # How many of the newest entries each history keeps. A demo scenario notes a few dozen timeline entries
    # and one or two decisions; a live kiosk keeps about the last days of its timeline (the access log keeps
    # every decision for good).
    timeline_keep = 10000
    decisions_keep = 2000
    latencies_keep = 2000
    flush_every_s = 5.0  # how often the decider moves spooled access-log records into the database

    def __init__(
        self,
        config: Config,
        gate: GateDriver,
        speaker: Any,
        access_log: AccessLog,
        media_clock: bool = False,
    ) -> None:
        self.config = config
        self.gate = gate
        self.speaker = speaker  # anything with say(key, text)
        self.access_log = access_log
        self.media_clock = media_clock
        self.state = State()
        # Bounded histories, newest last; appended by the decider thread (and note() callers).
        self.timeline: Deque[TimelineEntry] = deque(maxlen=self.timeline_keep)
        self.latencies_ms: Deque[float] = deque(maxlen=self.latencies_keep)  # readable pass → gate open, per grant
        self.decisions: Deque[Tuple[float, Any]] = deque(maxlen=self.decisions_keep)
        self.listeners: List[Callable[[Action, State], None]] = []
        self.note_listeners: List[Callable[[TimelineEntry], None]] = []  # each timeline entry, once, as noted
        self._events: "queue.Queue[Optional[Tuple[Event, float, Optional[Frame]]]]" = queue.Queue()
        self._scheduled: List[Tuple[float, Event]] = []
        self._pass_first_wall: Dict[Any, float] = {}
        self._last_now = 0.0
        self._flushed_at = time.monotonic()
        self._stop = threading.Event()
        self.heartbeat = time.monotonic()  # the decider's last turn (kiosk.runtime.watchdog)
        self._decider = threading.Thread(target=self._decide_loop, name="decider", daemon=True)
        self._ticker = threading.Thread(target=self._tick_loop, name="ticker", daemon=True)

    # ---- feeding events (any thread) ---------------------------------------------------------

    def post(self, event: Event, now: Optional[float] = None, frame: Optional[Frame] = None) -> None:
        self._events.put((event, time.monotonic() if now is None else now, frame))

    def schedule(self, event: Event, at: float) -> None:
        """Deliver ``event`` once the gate's clock reaches ``at`` (scripted speech in the demo)."""
        self._scheduled.append((at, event))
        self._scheduled.sort(key=lambda item: item[0])

    def note(self, kind: str, text: str, t: Optional[float] = None) -> None:
        """Add an entry to the timeline and hand it to each of ``note_listeners`` (in the calling thread)."""
        entry = TimelineEntry(self._last_now if t is None else t, kind, text)
        self.timeline.append(entry)
        for listener in self.note_listeners:
            try:
                listener(entry)
            except Exception:  # a broken echo (a closed stdout) never stops the gate
                log.exception("timeline listener failed")

    # ---- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self._decider.start()
        if not self.media_clock:
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        self._events.put(None)
        self._decider.join(timeout=5)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every posted event has been handled."""
        done = threading.Event()
        self._events.put((_Marker(done), self._last_now, None))  # type: ignore[arg-type]
        done.wait(timeout)

    def finish_media(self, until: float, step_s: float = 0.1) -> None:
        """Media clock: let time run on after the last frame so timeouts and cooldowns complete."""
        t = self._last_now
        while t < until:
            t += step_s
            self.post(Tick(), t)
        self.drain()

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.2):
            self.post(Tick())

    def _decide_loop(self) -> None:
        while True:
            self.heartbeat = time.monotonic()
            try:
                item = self._events.get(timeout=1.0)  # bounded: an idle decider still beats
            except queue.Empty:
                continue
            if item is None:
                if self._stop.is_set():
                    return
                continue
            event, now, frame = item
            if isinstance(event, _Marker):
                event.done.set()
                continue
            try:
                self.handle(event, now, frame)
            except Exception:  # the decider must outlive any one bad event; the gate stays as it is
                log.exception("decider: event %r failed", event)

    # ---- one event ---------------------------------------------------------------------------

    def handle(self, event: Event, now: float, frame: Optional[Frame] = None) -> List[Action]:
        now = max(now, self._last_now)  # the core's clock never runs backwards
        while self._scheduled and self._scheduled[0][0] <= now:
            at, due = self._scheduled.pop(0)
            self._last_now = at
            self.handle(due, at)
        self._last_now = now
        if isinstance(event, Tick) and time.monotonic() - self._flushed_at >= self.flush_every_s:
            self._flushed_at = time.monotonic()
            self.access_log.flush()  # spooled records into the database, a checkpoint when one is due
        self._observe(event, now, frame)
        self.state, actions = step(self.state, event, now, self.config.policy)
        self.execute(actions, now)
        return actions

    def _observe(self, event: Event, now: float, frame: Optional[Frame]) -> None:
        if isinstance(event, PassPresented):
            key = (event.check.serial, event.check.reason)
            if frame is not None and key not in self._pass_first_wall:
                self._pass_first_wall[key] = frame.wall
                self.note("pass", "pass read: {} {}".format(event.check.reason, event.check.resident_name or ""), now)
        elif isinstance(event, Heard):
            self.note("heard", "heard 「{}」 → intent {}".format(event.text, event.intent), now)

    def gate_hold(self) -> Optional[str]:
        """Why the gate must stay closed right now (an unacknowledged access-log alarm, a relay that did not
        close), or None."""
        alarm = getattr(self.access_log, "alarm", None)
        if alarm:
            return "access log alarm: {}".format(alarm.get("text") or alarm.get("reason"))
        fault = getattr(self.gate, "fault", None)
        if fault:
            return "gate relay fault: {}".format(fault)
        return None

    def execute(self, actions: List[Action], now: float) -> None:
        actions, written = self._write_ahead(actions, now)
        for action in actions:
            if isinstance(action, OpenGate):
                opened = self.gate.pulse(action.ms or self.config.gate.pulse_ms)
                latency = self._record_latency()
                since = "; {:.0f} ms after the pass was read".format(latency) if latency is not None else ""
                self.note("gate", "gate OPEN ({} ms{})".format(self.config.gate.pulse_ms, since) if opened
                          else "gate FAULT", now)
                if not opened:
                    self._say("gate_fault", PROMPTS["gate_fault"], now)
                    if written is not None:  # the grant was recorded as opening the gate: record that it did not
                        self._log(replace(written, outcome="fault", reason="gate_fault", gate_opened=False), now)
                elif written is not None and written.resident_id is not None:
                    self._send_card(written.resident_id, now)
            elif isinstance(action, Say):
                self._say(action.key, action.text, now)
            elif isinstance(action, Show):
                self.note("show", action.screen, now)
                if action.screen == "idle":
                    self._pass_first_wall.clear()  # the next person's pass is news again
            elif isinstance(action, Log):
                if written is not None and action.decision.outcome == "granted":
                    self._noted(written, now)  # already in the log, written ahead of the gate
                else:
                    self._log(action.decision, now)
                # Decided: a pass shown from now on is news (a queue's next person may come before the idle screen,
                # and a resident coming back shows the same pass again).
                self._pass_first_wall.clear()
            for listener in self.listeners:
                listener(action, self.state)

    def _write_ahead(self, actions: List[Action], now: float) -> Tuple[List[Action], Optional[Decision]]:
        """A grant is recorded, durably, before the gate opens. When it cannot be (disk full, log lost) or
        something else keeps the gate closed, the grant becomes a refusal that says so: no OpenGate, the
        fault prompt, and a record with gate_opened false. Returns the actions and the decision written."""
        if not any(isinstance(a, OpenGate) for a in actions):
            return actions, None
        grant = next((a.decision for a in actions if isinstance(a, Log)), None)
        hold = self.gate_hold()
        if hold is None and grant is not None:
            decision = replace(grant, gate_opened=True)
            if self.access_log.append(decision, durable=True) is not None:
                return actions, decision
            hold = "the access log cannot be written ({})".format(
                getattr(self.access_log, "problem", None) or "database and spool refused the record")
        log.error("gate held closed: %s", hold)
        self.note("gate", "gate HELD CLOSED: {}".format(hold), now)
        text = PROMPTS["gate_fault"]
        held: List[Action] = []
        for action in actions:
            if isinstance(action, OpenGate):
                continue
            if isinstance(action, Show) and action.screen == "granted":
                action = Show("denied", (("prompt", text), ("reason", "gate_fault")))
            elif isinstance(action, Say):
                action = Say("gate_fault", text)
            elif isinstance(action, Log):
                action = Log(replace(action.decision, gate_opened=False))
            held.append(action)
        return held, None

    def _send_card(self, resident_id: int, now: float) -> None:
        """Beside the relay, the resident's number to an access-control panel (``gate.wiegand``). A failure is the
        gate's ``wiegand_fault`` and a note: the grant stays logged, the relay does what it did."""
        if self.config.gate.wiegand == "off":
            return
        try:
            sent = self.gate.send_card(resident_id)
        except Exception as exc:  # a broken Wiegand line never stops the decider
            log.error("gate: Wiegand card %d: %s", resident_id, exc)
            sent = False
        self.note("gate", "Wiegand {} card {} {}".format(
            self.config.gate.wiegand, resident_id,
            "sent" if sent else "FAULT: {}".format(getattr(self.gate, "wiegand_fault", None) or "not sent")), now)

    def _log(self, decision: Decision, now: float) -> None:
        self.access_log.append(decision)
        self._noted(decision, now)

    def _noted(self, decision: Decision, now: float) -> None:
        self.decisions.append((now, decision))
        who = decision.resident_name or "-"
        self.note("decided", "{} ({}) resident={} mask={} gate_opened={}".format(
            decision.outcome, decision.reason, who, decision.mask, decision.gate_opened), now)

    def _say(self, key: str, text: str, now: float) -> None:
        self.note("say", "「{}」".format(text), now)
        try:
            self.speaker.say(key, text)
        except Exception as exc:  # a broken voice never stops the gate
            log.error("speaker: %s", exc)

    def _record_latency(self) -> Optional[float]:
        """Readable pass → gate pulse, in ms, for this grant (None when the pass was not seen on a frame)."""
        check = self.state.check
        if check is None:
            return None
        first = self._pass_first_wall.get((check.serial, check.reason))
        if first is None:
            return None
        self.latencies_ms.append((time.perf_counter() - first) * 1000)
        return self.latencies_ms[-1]


class _Marker:
    """An internal event that tells ``drain`` the queue has been worked through."""

    def __init__(self, done: threading.Event) -> None:
        self.done = done
