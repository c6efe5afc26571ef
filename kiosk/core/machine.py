"""The gate's decision core: a pure state machine.

    step(state, event, now, policy) -> (state, actions)

idle → engaged → checking → granted / denied → cooldown → idle (or straight to engaged for the next person)

* A face (big enough to be a user, not a passer-by), a spoken request or a shown pass engages.
  The largest face at that moment is the *primary* person; other faces never change the decision.
* The mask state of the primary face is voted over its last few frames, so one frame cannot flip it.
* Engaged: waiting for what the policy requires (mask, pass, spoken request).
  Checking: a valid pass is in, still waiting for the mask vote or the request.
* A confirmed bad mask or an invalid pass denies at once with its reason; all requirements met grants.
  The gate opens before the greeting is spoken.
* A face voted UNSURE (the model's "incorrect" below its calibrated threshold) is not a confirmed bad
  mask: the kiosk asks the resident to adjust the mask (at most once per ``adjust_prompt_every_s``)
  and keeps looking; with_mask votes then grant, and a face that stays unsure times out as usual.
* Nobody seen for ``left_after_s``, or no progress for ``engaged_timeout_s``: back to idle (logged as
  abandoned when the person had got anywhere).
* A queue does not wait for the result screen: ``next_person_after_s`` after a result, a different person
  who is now the largest face in view is served at once.

Nothing here imports a device, UI or model library; time is the ``now`` argument.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from enum import Enum
from typing import List, Optional, Tuple

from kiosk.config import PolicyConfig
from kiosk.core.events import (
    Action,
    Decision,
    Event,
    FaceObservation,
    FacesSeen,
    Heard,
    Log,
    Mask,
    OpenGate,
    PassCheck,
    PassPresented,
    Say,
    Show,
)
from kiosk.core.prompts import PROMPTS, prompt


class Phase(str, Enum):
    IDLE = "idle"
    ENGAGED = "engaged"
    CHECKING = "checking"
    GRANTED = "granted"
    DENIED = "denied"
    COOLDOWN = "cooldown"


ACTIVE = (Phase.ENGAGED, Phase.CHECKING)


@dataclass(frozen=True)
class State:
    phase: Phase = Phase.IDLE
    since: float = 0.0  # when the current phase began
    progress_at: float = 0.0  # last time something new was learned about the person
    track_id: Optional[int] = None  # the primary face
    last_face_at: Optional[float] = None
    votes: Tuple[Mask, ...] = ()
    mask: Optional[Mask] = None  # the voted mask state of the primary face
    check: Optional[PassCheck] = None
    intent: Optional[str] = None
    said: Tuple[str, ...] = ()  # prompt keys already said to this person
    adjust_said_at: Optional[float] = None  # when this person was last asked to adjust an unsure mask
    others: int = 0  # faces in view besides the primary
    granted_track: Optional[int] = None  # a granted person walking through is not engaged again
    last_denial: Optional[Tuple[Optional[int], str, float]] = None  # (track, reason, when) last logged


IDLE = State()


def step(state: State, event: Event, now: float, policy: PolicyConfig = PolicyConfig()) -> Tuple[State, List[Action]]:
    """Advance the gate by one event. Pure: the same inputs always give the same outputs."""
    if state.phase in (Phase.GRANTED, Phase.DENIED, Phase.COOLDOWN):
        return _after_result(state, event, now, policy)
    if isinstance(event, Heard) and event.intent == "help":
        return state, [Say("help", PROMPTS["help"])]
    if state.phase == Phase.IDLE:
        return _idle(state, event, now, policy)
    return _active(state, event, now, policy)


# ---- phases ---------------------------------------------------------------------------------


def _idle(state: State, event: Event, now: float, policy: PolicyConfig) -> Tuple[State, List[Action]]:
    if isinstance(event, FacesSeen):
        faces = _users(event, policy)
        granted = state.granted_track
        if granted is not None and not any(f.track_id == granted for f in event.faces):
            state = replace(state, granted_track=None)  # they have walked through
        faces = [f for f in faces if f.track_id != state.granted_track]
        if not faces:
            return state, []
        primary = max(faces, key=lambda f: f.area)
        engaged = _engage(now, state)
        return _active(engaged, event, now, policy, primary_hint=primary.track_id)
    if isinstance(event, PassPresented) or (isinstance(event, Heard) and event.intent == "enter"):
        return _active(_engage(now, state), event, now, policy)
    return state, []


def _engage(now: float, before: State) -> State:
    return State(phase=Phase.ENGAGED, since=now, progress_at=now, last_denial=before.last_denial)


def _active(
    state: State, event: Event, now: float, policy: PolicyConfig, primary_hint: Optional[int] = None
) -> Tuple[State, List[Action]]:
    actions: List[Action] = []
    before = (state.mask, state.check, state.intent)

    if isinstance(event, FacesSeen):
        state = _observe(state, event, now, policy, primary_hint)
    elif isinstance(event, PassPresented):
        if state.check != event.check:
            state = replace(state, check=event.check)
    elif isinstance(event, Heard) and event.intent == "enter":
        state = replace(state, intent="enter")

    if (state.mask, state.check, state.intent) != before:
        state = replace(state, progress_at=now)

    # Leaving and giving up come first: nothing is decided for someone who is gone.
    if state.last_face_at is not None and now - state.last_face_at >= policy.left_after_s:
        return _abandon(state, "left", now, say=False)
    if now - state.progress_at >= policy.engaged_timeout_s:
        return _abandon(state, "timeout", now, say=True)

    verdict = _verdict(state, policy)
    if verdict is not None:
        return _decide(state, verdict, now, policy)

    if state.check is not None and state.check.valid and state.phase == Phase.ENGAGED:
        state = replace(state, phase=Phase.CHECKING, since=now)
    state, said = _prompt_next(state, now, policy)
    actions.extend(said)
    if said or (state.mask, state.check, state.intent) != before or primary_hint is not None:
        actions.append(_show(state))
    return state, actions


def _after_result(state: State, event: Event, now: float, policy: PolicyConfig) -> Tuple[State, List[Action]]:
    if isinstance(event, FacesSeen):
        state = _follow_served(state, event, now)
    if isinstance(event, FacesSeen) and _next_person(state, event, now, policy):
        # The next in the queue does not wait for the result screen and cooldown: the person just served is
        # walking through (the gate opened first), and the newcomer is served now.
        fresh = State(granted_track=state.granted_track, last_denial=state.last_denial)
        return _idle(fresh, event, now, policy)
    if state.phase in (Phase.GRANTED, Phase.DENIED) and now - state.since >= policy.result_hold_s:
        state = replace(state, phase=Phase.COOLDOWN, since=now)
    if state.phase == Phase.COOLDOWN and now - state.since >= policy.cooldown_s:
        return State(granted_track=state.granted_track, last_denial=state.last_denial), [Show("idle")]
    return state, []


# ---- rules ----------------------------------------------------------------------------------


# The person just served out of view this long has gone: a face that comes back with their track id is the next
# person (an IoU tracker gives a newcomer who stands where they stood the same id).
SERVED_GONE_S = 0.3


def _follow_served(state: State, event: FacesSeen, now: float) -> State:
    served = {state.track_id, state.granted_track} - {None}
    if not served:
        return state
    if any(f.track_id in served for f in event.faces):
        return replace(state, last_face_at=now)
    if state.last_face_at is not None and now - state.last_face_at >= SERVED_GONE_S:
        return replace(state, track_id=None, granted_track=None)
    return state


def _next_person(state: State, event: FacesSeen, now: float, policy: PolicyConfig) -> bool:
    """A result has been shown for ``next_person_after_s`` and the largest user in view is someone else than the
    person just served (and than a granted person walking through)."""
    result_at = state.since if state.phase != Phase.COOLDOWN else state.since - policy.result_hold_s
    if now - result_at < policy.next_person_after_s:
        return False
    faces = _users(event, policy)
    if not faces:
        return False
    largest = max(faces, key=lambda f: f.area)
    return largest.track_id not in (state.track_id, state.granted_track)


def _users(event: FacesSeen, policy: PolicyConfig) -> List[FaceObservation]:
    """Faces close enough to be using the kiosk; smaller ones are people passing behind."""
    return [f for f in event.faces if f.height >= policy.min_face_px]


def _observe(
    state: State, event: FacesSeen, now: float, policy: PolicyConfig, primary_hint: Optional[int]
) -> State:
    faces = _users(event, policy)
    track = state.track_id if state.track_id is not None else primary_hint
    if track is None and faces:  # engaged by voice or pass: the person is whoever steps up
        track = max(faces, key=lambda f: f.area).track_id
    mine = [f for f in faces if f.track_id == track]
    state = replace(state, track_id=track, others=len([f for f in faces if f.track_id != track]))
    if not mine:
        return state
    face = mine[0]
    votes = state.votes
    # an unsure reading is low-confidence by definition; it votes as unsure (it never denies)
    if face.confidence >= policy.min_confidence or face.mask == Mask.UNSURE:
        votes = (votes + (face.mask,))[-policy.vote_window :]
    return replace(state, last_face_at=now, votes=votes, mask=voted_mask(votes, state.mask, policy))


def voted_mask(votes: Tuple[Mask, ...], current: Optional[Mask], policy: PolicyConfig) -> Optional[Mask]:
    """The class with at least ``vote_min`` votes in the window; else UNSURE when sure and unsure "incorrect"
    votes together reach ``vote_min`` (a mask that looks off, but not surely); otherwise keep what we believed."""
    if not votes:
        return current
    counts = Counter(votes)
    label, count = counts.most_common(1)[0]
    if count >= policy.vote_min:
        return label
    if counts[Mask.INCORRECT] + counts[Mask.UNSURE] >= policy.vote_min:
        return Mask.UNSURE
    return current


def _mask_ok(mask: Optional[Mask], policy: PolicyConfig) -> Optional[bool]:
    """True/False once the vote has settled, None while it has not."""
    if not policy.mask_required:
        return True
    if mask is None or mask == Mask.UNSURE:  # unsure is never a verdict: the kiosk keeps looking
        return None
    if mask == Mask.INCORRECT:
        return not policy.incorrect_counts_as_unmasked
    return mask == Mask.WITH


def _verdict(state: State, policy: PolicyConfig) -> Optional[Tuple[str, str]]:
    """(outcome, reason) once the decision can be made, else None."""
    mask_ok = _mask_ok(state.mask, policy)
    if mask_ok is False:
        return "denied", ("mask_incorrect" if state.mask == Mask.INCORRECT else "no_mask")
    if policy.pass_required and state.check is not None and not state.check.valid:
        return "denied", state.check.reason
    pass_ok = not policy.pass_required or (state.check is not None and state.check.valid)
    request_ok = not policy.request_required or state.intent == "enter"
    if mask_ok and pass_ok and request_ok:
        return "granted", "ok"
    return None


def _prompt_next(state: State, now: float, policy: PolicyConfig) -> Tuple[State, List[Action]]:
    """Tell the person what is still missing: each hint once per person; "adjust your mask" while the mask is
    voted unsure, at most once per ``adjust_prompt_every_s``."""
    if policy.mask_required and state.mask == Mask.UNSURE and (
            state.adjust_said_at is None or now - state.adjust_said_at >= policy.adjust_prompt_every_s):
        return replace(state, adjust_said_at=now), [Say("adjust_mask", PROMPTS["adjust_mask"])]
    if policy.pass_required and state.check is None:
        key = "welcome"
    elif policy.request_required and state.intent != "enter":
        key = "say_request"
    else:
        return state, []
    if key in state.said:
        return state, []
    return replace(state, said=state.said + (key,)), [Say(key, PROMPTS[key])]


def _record(state: State, outcome: str, reason: str, opened: bool) -> Decision:
    check = state.check
    return Decision(
        outcome=outcome,
        reason=reason,
        mask=state.mask.value if state.mask is not None else None,
        pass_reason=check.reason if check is not None else None,
        resident_id=check.resident_id if check is not None else None,
        resident_name=check.resident_name if check is not None else None,
        pass_serial=check.serial if check is not None else None,
        intent=state.intent,
        gate_opened=opened,
    )


def _decide(
    state: State, verdict: Tuple[str, str], now: float, policy: PolicyConfig
) -> Tuple[State, List[Action]]:
    outcome, reason = verdict
    if outcome == "granted":
        name = state.check.resident_name if state.check is not None and state.check.valid else None
        key = "granted" if name else "granted_anonymous"
        text = prompt(key, name=name or "")
        done = replace(state, phase=Phase.GRANTED, since=now, granted_track=state.track_id)
        # Open first: the resident walks while the kiosk is still speaking.
        return done, [
            OpenGate(),
            Show("granted", (("prompt", text), ("name", name or ""))),
            Say(key, text),
            Log(_record(state, outcome, reason, opened=True)),
        ]
    text = PROMPTS[reason]
    done = replace(state, phase=Phase.DENIED, since=now, granted_track=None)
    actions: List[Action] = [Show("denied", (("prompt", text), ("reason", reason))), Say(reason, text)]
    last = state.last_denial
    if last is not None and last[:2] == (state.track_id, reason) and now - last[2] < policy.repeat_denial_log_s:
        return done, actions  # the same person still standing there: told again, logged once
    done = replace(done, last_denial=(state.track_id, reason, now))
    return done, actions + [Log(_record(state, outcome, reason, opened=False))]


def _abandon(state: State, reason: str, now: float, say: bool) -> Tuple[State, List[Action]]:
    actions: List[Action] = []
    attempted = state.check is not None or state.intent is not None or state.mask is not None
    if say and attempted:
        actions.append(Say(reason, PROMPTS[reason]))
    if attempted:
        actions.append(Log(_record(state, "abandoned", reason, opened=False)))
    actions.append(Show("idle"))
    return State(last_denial=state.last_denial), actions


def _show(state: State) -> Show:
    detail = [
        ("mask", state.mask.value if state.mask is not None else ""),
        ("pass", state.check.reason if state.check is not None else ""),
        ("intent", state.intent or ""),
        ("others", str(state.others)),
    ]
    return Show(state.phase.value, tuple(detail))
