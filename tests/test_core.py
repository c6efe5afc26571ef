"""Every rule of the gate, with plain events and a hand-driven clock."""

from __future__ import annotations

from dataclasses import replace
from typing import List, Tuple

import pytest

from kiosk.config import PolicyConfig
from kiosk.core.events import (
    Action,
    Decision,
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
    Tick,
)
from kiosk.core.machine import Phase, State, step
from kiosk.core.prompts import PROMPTS

VALID = PassCheck(True, "ok", 1, "张三", 10)
POLICY = PolicyConfig()


def face(mask: Mask = Mask.WITH, track: int = 1, height: int = 160, conf: float = 0.95, x: int = 200) -> FaceObservation:
    return FaceObservation(track, mask, conf, (x, 100, x + height, 100 + height))


def seen(*faces: FaceObservation) -> FacesSeen:
    return FacesSeen(tuple(faces))


class Gate:
    """Drives the core with a clock and keeps every action."""

    def __init__(self, policy: PolicyConfig = POLICY) -> None:
        self.state = State()
        self.now = 0.0
        self.policy = policy
        self.actions: List[Action] = []

    def feed(self, event, dt: float = 0.1) -> List[Action]:
        self.now += dt
        self.state, actions = step(self.state, event, self.now, self.policy)
        self.actions.extend(actions)
        return actions

    def feed_many(self, event, n: int, dt: float = 0.1) -> None:
        for _ in range(n):
            self.feed(event, dt)

    def logs(self) -> List[Decision]:
        return [a.decision for a in self.actions if isinstance(a, Log)]

    def said(self) -> List[str]:
        return [a.key for a in self.actions if isinstance(a, Say)]

    def opened(self) -> int:
        return sum(1 for a in self.actions if isinstance(a, OpenGate))


def decided(gate: Gate) -> Tuple[str, str]:
    logs = gate.logs()
    assert len(logs) == 1, logs
    return logs[0].outcome, logs[0].reason


# ---- the happy path -------------------------------------------------------------------------------


def test_masked_resident_with_valid_pass_is_let_in_and_greeted_by_name():
    g = Gate()
    g.feed_many(seen(face()), 3)
    assert g.state.phase == Phase.ENGAGED and g.state.mask == Mask.WITH
    actions = g.feed(PassPresented(VALID))
    assert g.state.phase == Phase.GRANTED
    kinds = [type(a) for a in actions]
    assert kinds.index(OpenGate) < kinds.index(Say), "the gate opens before the greeting is spoken"
    greeting = [a for a in actions if isinstance(a, Say)][0]
    assert greeting.text == "您好，张三，欢迎回家，二维码有效请您通过"
    assert decided(g) == ("granted", "ok")
    record = g.logs()[0]
    assert record.resident_name == "张三" and record.mask == "with_mask" and record.gate_opened


def test_pass_before_mask_is_confirmed_waits_in_checking_then_grants():
    g = Gate()
    g.feed(seen(face()))
    g.feed(PassPresented(VALID))
    assert g.state.phase == Phase.CHECKING and g.opened() == 0
    g.feed_many(seen(face()), 2)
    assert g.state.phase == Phase.GRANTED and g.opened() == 1


def test_idle_face_engages_with_a_welcome_said_once():
    g = Gate()
    g.feed_many(seen(face()), 10)
    assert g.said() == ["welcome"]
    assert g.state.phase == Phase.ENGAGED


def test_full_cycle_returns_to_idle_after_result_and_cooldown():
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(VALID))
    g.feed(Tick(), dt=POLICY.result_hold_s)
    assert g.state.phase == Phase.COOLDOWN
    g.feed(seen(face()), dt=POLICY.cooldown_s)
    assert g.state.phase == Phase.IDLE


def test_granted_person_walking_through_is_not_engaged_again():
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(VALID))
    g.feed(Tick(), dt=POLICY.result_hold_s)
    g.feed(Tick(), dt=POLICY.cooldown_s)
    g.feed_many(seen(face()), 5)  # still in view, same track
    assert g.state.phase == Phase.IDLE and len(g.logs()) == 1
    g.feed_many(seen(face(track=2)), 1)  # the next person steps up
    assert g.state.phase == Phase.ENGAGED and g.state.track_id == 2


def test_result_phases_ignore_new_events():
    g = Gate()
    g.feed_many(seen(face(Mask.WITHOUT)), 3)
    assert g.state.phase == Phase.DENIED
    g.feed(PassPresented(VALID))
    g.feed_many(seen(face(Mask.WITH)), 5)
    assert g.opened() == 0 and len(g.logs()) == 1


def test_the_next_person_in_a_queue_is_served_without_waiting_for_the_result_screen():
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(VALID))
    assert g.state.phase == Phase.GRANTED
    g.feed(seen(face(track=2, x=400)), dt=0.3)  # too soon: the result is still being read
    assert g.state.phase == Phase.GRANTED
    g.feed(seen(face(track=1), face(track=2, height=200, x=400)), dt=POLICY.next_person_after_s)
    assert g.state.phase == Phase.ENGAGED and g.state.track_id == 2  # long before result_hold_s + cooldown_s
    g.feed_many(seen(face(track=2, height=200, x=400)), 3)
    g.feed(PassPresented(PassCheck(True, "ok", 2, "李四", 11)))
    assert g.opened() == 2 and [d.resident_name for d in g.logs()] == ["张三", "李四"]


def test_the_person_just_served_never_counts_as_the_next_one():
    g = Gate()
    g.feed_many(seen(face(Mask.WITHOUT)), 3)
    assert g.state.phase == Phase.DENIED
    g.feed_many(seen(face(Mask.WITH)), 15)  # the denied person stays and puts a mask on: same track
    assert g.state.phase in (Phase.DENIED, Phase.COOLDOWN) and len(g.logs()) == 1
    g2 = Gate()
    g2.feed_many(seen(face()), 3)
    g2.feed(PassPresented(VALID))
    g2.feed(seen(face(track=1, height=300), face(track=2, height=150)), dt=1.5)  # the granted one is largest
    assert g2.state.phase == Phase.GRANTED


def test_a_newcomer_given_the_served_persons_track_id_is_the_next_person():
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(VALID))
    g.feed_many(seen(), 4)  # the granted person walks off: out of view for 0.4 s
    g.feed_many(seen(face(track=1)), 6)  # someone stands where they stood; the tracker reuses the id
    assert g.state.phase == Phase.ENGAGED and g.state.track_id == 1 and g.opened() == 1


def test_a_served_person_missed_for_a_frame_or_two_is_still_the_same_person():
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(VALID))
    for _ in range(5):
        g.feed(seen())  # a missed detection
        g.feed_many(seen(face(track=1)), 3)
    assert g.state.phase in (Phase.GRANTED, Phase.COOLDOWN, Phase.IDLE) and g.opened() == 1 and len(g.logs()) == 1


def test_a_next_person_rule_longer_than_the_result_is_the_old_behaviour():
    g = Gate(PolicyConfig(next_person_after_s=10.0))
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(VALID))
    g.feed(seen(face(track=2)), dt=1.5)
    assert g.state.phase == Phase.GRANTED


# ---- masks ----------------------------------------------------------------------------------------


def test_no_mask_is_denied_with_spoken_reason():
    g = Gate()
    g.feed_many(seen(face(Mask.WITHOUT)), 3)
    assert decided(g) == ("denied", "no_mask")
    assert "no_mask" in g.said() and g.opened() == 0
    assert [a for a in g.actions if isinstance(a, Say)][-1].text == "请您佩戴口罩"


def test_incorrect_mask_is_denied_by_default():
    g = Gate()
    g.feed_many(seen(face(Mask.INCORRECT)), 3)
    assert decided(g) == ("denied", "mask_incorrect")
    assert [a for a in g.actions if isinstance(a, Say)][-1].text == "请正确佩戴口罩，遮住口鼻"


def test_incorrect_mask_allowed_when_policy_says_so():
    g = Gate(replace(POLICY, incorrect_counts_as_unmasked=False))
    g.feed_many(seen(face(Mask.INCORRECT)), 3)
    g.feed(PassPresented(VALID))
    assert decided(g) == ("granted", "ok")


def test_mask_not_required_grants_unmasked_resident():
    g = Gate(replace(POLICY, mask_required=False))
    g.feed(seen(face(Mask.WITHOUT)))
    g.feed(PassPresented(VALID))
    assert decided(g) == ("granted", "ok")


def test_one_odd_frame_cannot_flip_the_mask_state():
    g = Gate(replace(POLICY, vote_window=5, vote_min=3))
    g.feed_many(seen(face(Mask.WITH)), 3)
    g.feed(seen(face(Mask.WITHOUT)))  # one blurry frame
    assert g.state.mask == Mask.WITH and not g.logs()
    g.feed(seen(face(Mask.WITH)))
    g.feed(PassPresented(VALID))
    assert decided(g) == ("granted", "ok")


def test_two_odd_frames_in_a_row_still_do_not_deny():
    g = Gate(replace(POLICY, vote_window=5, vote_min=3))
    g.feed_many(seen(face(Mask.WITH)), 3)
    g.feed_many(seen(face(Mask.WITHOUT)), 2)
    assert not g.logs()


def test_low_confidence_frames_do_not_vote():
    g = Gate()
    g.feed_many(seen(face(Mask.WITHOUT, conf=0.3)), 10)
    assert g.state.mask is None and not g.logs()


# ---- unsure masks (issue 12): an "incorrect" below the calibrated threshold never denies ----------------


def unsure(conf: float = 0.6, **kw) -> FaceObservation:
    return face(Mask.UNSURE, conf=conf, **kw)


def test_unsure_votes_never_deny_and_ask_to_adjust():
    g = Gate()
    g.feed_many(seen(unsure()), 30)
    assert g.state.mask == Mask.UNSURE and g.state.phase == Phase.ENGAGED
    assert not g.logs() and g.opened() == 0
    assert "adjust_mask" in g.said()
    assert [a.text for a in g.actions if isinstance(a, Say) and a.key == "adjust_mask"][0] == "请调整口罩，戴好后稍等"
    assert "mask_incorrect" not in g.said()


def test_unsure_votes_count_even_below_min_confidence():
    g = Gate()
    g.feed_many(seen(unsure(conf=0.35)), 3)
    assert g.state.mask == Mask.UNSURE and "adjust_mask" in g.said()


def test_unsure_then_with_mask_grants():
    g = Gate()
    g.feed(PassPresented(VALID))
    g.feed_many(seen(unsure()), 5)
    assert g.state.mask == Mask.UNSURE and g.opened() == 0
    g.feed_many(seen(face(Mask.WITH)), 3)  # the resident pulled the mask up
    assert decided(g) == ("granted", "ok") and g.opened() == 1
    assert g.logs()[0].mask == "with_mask"


def test_sure_incorrect_still_denies_after_an_unsure_start():
    g = Gate()
    g.feed_many(seen(unsure()), 3)
    assert g.state.mask == Mask.UNSURE and not g.logs()
    g.feed_many(seen(face(Mask.INCORRECT)), 3)
    assert decided(g) == ("denied", "mask_incorrect")


def test_adjust_prompt_is_rate_limited_per_person():
    g = Gate(replace(POLICY, adjust_prompt_every_s=5.0, engaged_timeout_s=60.0))
    told_at = []
    for _ in range(120):  # 12 s of unsure frames at 10 fps
        if any(isinstance(a, Say) and a.key == "adjust_mask" for a in g.feed(seen(unsure()))):
            told_at.append(g.now)
    assert len(told_at) == 3  # at about 0.3 s, 5.3 s and 10.3 s
    assert all(later - earlier >= 5.0 - 1e-9 for earlier, later in zip(told_at, told_at[1:]))
    assert told_at[0] < 0.5  # the first time as soon as the vote settles


def test_a_new_person_is_told_at_once():
    g = Gate()
    g.feed_many(seen(unsure()), 3)
    assert g.said().count("adjust_mask") == 1
    g.feed(seen(), dt=POLICY.left_after_s)  # gone
    g.feed_many(seen(unsure(track=2)), 3)
    assert g.said().count("adjust_mask") == 2


def test_staying_unsure_ends_in_the_usual_timeout_not_a_denial():
    g = Gate()
    g.feed_many(seen(unsure()), int(POLICY.engaged_timeout_s / 0.5) + 4, dt=0.5)
    assert decided(g) == ("abandoned", "timeout")
    assert g.logs()[0].mask == "mask_unsure" and g.opened() == 0
    assert "mask_incorrect" not in g.said()


@pytest.mark.parametrize("window, expected", [
    ((Mask.UNSURE, Mask.WITH, Mask.UNSURE, Mask.WITH, Mask.UNSURE), Mask.UNSURE),  # unsure reaches vote_min
    ((Mask.INCORRECT, Mask.UNSURE, Mask.WITH, Mask.UNSURE, Mask.WITH), Mask.UNSURE),  # off, but not surely
    ((Mask.INCORRECT, Mask.UNSURE, Mask.INCORRECT, Mask.UNSURE, Mask.INCORRECT), Mask.INCORRECT),  # sure majority
    ((Mask.UNSURE, Mask.WITH, Mask.WITH, Mask.UNSURE, Mask.WITH), Mask.WITH),
])
def test_mixed_windows(window, expected):
    g = Gate()
    for m in window:
        g.feed(seen(face(m, conf=0.6)))
    if expected == Mask.INCORRECT:
        assert decided(g) == ("denied", "mask_incorrect")
    else:
        assert g.state.mask == expected and all(d.outcome != "denied" for d in g.logs())


def test_unsure_and_with_mask_alternating_never_denies_and_grants_with_a_pass():
    g = Gate()
    for i in range(12):
        g.feed(seen(face(Mask.WITH) if i % 2 else unsure()))
    assert not [d for d in g.logs() if d.outcome == "denied"]
    g.feed_many(seen(face(Mask.WITH)), 3)
    g.feed(PassPresented(VALID))
    assert decided(g) == ("granted", "ok")


def test_unsure_when_incorrect_is_allowed_still_waits_for_a_sure_reading():
    g = Gate(replace(POLICY, incorrect_counts_as_unmasked=False))
    g.feed(PassPresented(VALID))
    g.feed_many(seen(unsure()), 5)
    assert g.opened() == 0 and not g.logs()
    g.feed_many(seen(face(Mask.INCORRECT)), 3)
    assert decided(g) == ("granted", "ok")


def test_without_mask_still_denies_next_to_unsure_votes():
    g = Gate()
    g.feed_many(seen(unsure()), 2)
    g.feed_many(seen(face(Mask.WITHOUT)), 3)
    assert decided(g) == ("denied", "no_mask")


def test_mask_not_required_never_asks_to_adjust():
    g = Gate(replace(POLICY, mask_required=False, pass_required=True))
    g.feed_many(seen(unsure()), 10)
    assert "adjust_mask" not in g.said()


# ---- passes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["malformed", "bad_signature", "wrong_community", "expired", "not_yet_valid",
                                    "pass_revoked", "unknown_resident", "resident_revoked"])
def test_every_pass_refusal_denies_with_its_own_prompt(reason):
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(PassCheck(False, reason)))
    assert decided(g) == ("denied", reason)
    assert [a for a in g.actions if isinstance(a, Say)][-1].text == PROMPTS[reason]
    assert g.opened() == 0


def test_invalid_pass_denies_even_before_the_mask_vote():
    g = Gate()
    g.feed(seen(face()))
    g.feed(PassPresented(PassCheck(False, "expired", 1, "张三", 3)))
    assert decided(g) == ("denied", "expired")
    assert g.logs()[0].resident_name == "张三"


def test_pass_not_required_grants_on_mask_alone_without_a_name():
    g = Gate(replace(POLICY, pass_required=False))
    g.feed_many(seen(face()), 3)
    assert decided(g) == ("granted", "ok")
    assert [a for a in g.actions if isinstance(a, Say)][-1].key == "granted_anonymous"


def test_a_pass_alone_engages_from_idle():
    g = Gate()
    g.feed(PassPresented(VALID))
    assert g.state.phase == Phase.CHECKING
    g.feed_many(seen(face()), 3)
    assert decided(g) == ("granted", "ok")


# ---- the spoken request ---------------------------------------------------------------------------


def test_request_required_waits_for_the_phrase():
    g = Gate(replace(POLICY, request_required=True))
    g.feed_many(seen(face()), 3)
    g.feed(PassPresented(VALID))
    assert g.state.phase == Phase.CHECKING and g.opened() == 0
    assert "say_request" in g.said()
    g.feed(Heard("你好大白，请让我进入小区", "enter"))
    assert decided(g) == ("granted", "ok")
    assert g.logs()[0].intent == "enter"


def test_request_alone_engages_and_other_talk_is_ignored():
    g = Gate()
    g.feed(Heard("今天天气不错", None))
    assert g.state.phase == Phase.IDLE
    g.feed(Heard("你好大白，请让我进入小区", "enter"))
    assert g.state.phase == Phase.ENGAGED and g.state.intent == "enter"


def test_help_is_answered_in_any_phase_without_deciding():
    g = Gate()
    actions = g.feed(Heard("怎么用", "help"))
    assert [a.key for a in actions if isinstance(a, Say)] == ["help"]
    assert not g.logs() and g.state.phase == Phase.IDLE


# ---- people come and go ---------------------------------------------------------------------------


def test_person_leaving_before_decision_returns_to_idle_and_logs_the_attempt():
    g = Gate()
    g.feed_many(seen(face()), 3)  # mask confirmed: an attempt
    g.feed_many(seen(), 20)  # 2 s without them
    assert g.state.phase == Phase.IDLE
    assert decided(g) == ("abandoned", "left")
    assert g.opened() == 0
    assert isinstance(g.actions[-1], Show) and g.actions[-1].screen == "idle"


def test_passer_by_who_never_engaged_leaves_no_record():
    g = Gate()
    g.feed(seen(face()))
    g.feed_many(seen(), 20)
    assert g.state.phase == Phase.IDLE and not g.logs()


def test_leaving_is_also_noticed_by_ticks_when_frames_stop():
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed(Tick(), dt=POLICY.left_after_s + 0.1)
    assert decided(g) == ("abandoned", "left")


def test_no_progress_times_out_with_a_prompt():
    g = Gate()
    g.feed_many(seen(face()), 3)
    g.feed_many(seen(face()), int(POLICY.engaged_timeout_s / 0.5) + 1, dt=0.5)
    assert ("abandoned", "timeout") in [(d.outcome, d.reason) for d in g.logs()]
    assert "timeout" in g.said()


def test_voice_engagement_without_a_face_times_out():
    g = Gate()
    g.feed(Heard("请让我进入小区", "enter"))
    g.feed(Tick(), dt=POLICY.engaged_timeout_s + 0.1)
    assert decided(g) == ("abandoned", "timeout") and g.state.phase == Phase.IDLE


def test_second_face_does_not_change_the_primary_persons_decision():
    g = Gate()
    me, behind = face(Mask.WITH, track=1, height=180), face(Mask.WITHOUT, track=2, height=90, x=450)
    g.feed_many(seen(me, behind), 5)
    assert g.state.track_id == 1 and g.state.others == 1 and not g.logs()
    g.feed(PassPresented(VALID))
    assert decided(g) == ("granted", "ok")


def test_second_face_larger_later_does_not_take_over():
    g = Gate()
    g.feed_many(seen(face(Mask.WITH, track=1, height=150)), 3)
    g.feed_many(seen(face(Mask.WITH, track=1, height=150), face(Mask.WITHOUT, track=2, height=220, x=10)), 5)
    assert g.state.track_id == 1 and not g.logs()


def test_primary_leaving_while_someone_else_stays_counts_as_left():
    g = Gate()
    g.feed_many(seen(face(track=1)), 3)
    g.feed_many(seen(face(Mask.WITHOUT, track=2)), 20)
    outcomes = [(d.outcome, d.reason) for d in g.logs()]
    assert outcomes[0] == ("abandoned", "left")  # the first person's attempt ends…
    assert outcomes[1:] == [("denied", "no_mask")]  # …then the one who stayed is judged on their own mask


def test_small_faces_far_away_do_not_engage():
    g = Gate()
    g.feed_many(seen(face(height=POLICY.min_face_px - 1)), 5)
    assert g.state.phase == Phase.IDLE


def test_step_is_pure():
    state = State()
    event = seen(face())
    assert step(state, event, 1.0) == step(state, event, 1.0)
    assert state == State()


def test_core_imports_no_device_ui_or_model_code():
    import subprocess
    import sys

    code = (
        "import sys, kiosk.core.machine;"
        "bad=[m for m in sys.modules if m.split('.')[0] in "
        "('cv2','numpy','onnxruntime','PyQt5','sounddevice','pyzbar','sqlite3','cryptography')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_denied_person_who_stays_is_told_again_but_logged_once():
    g = Gate()
    for _ in range(8):  # ~8 s without a mask in front of the kiosk: denied, hold, cooldown, again…
        g.feed_many(seen(face(Mask.WITHOUT)), 10)
    assert g.said().count("no_mask") >= 2
    assert [(d.outcome, d.reason) for d in g.logs()] == [("denied", "no_mask")]
    g.feed(Tick(), dt=POLICY.repeat_denial_log_s)  # much later, still there: a new record
    g.feed_many(seen(face(Mask.WITHOUT)), 40)
    assert len(g.logs()) == 2


def test_a_new_reason_or_a_new_person_is_always_logged():
    g = Gate()

    def next_person_may_step_up():
        g.feed(Tick(), dt=POLICY.result_hold_s + 0.05)
        g.feed(Tick(), dt=POLICY.cooldown_s + 0.05)

    g.feed_many(seen(face(Mask.WITHOUT)), 3)
    next_person_may_step_up()
    g.feed_many(seen(face(Mask.INCORRECT)), 3)  # same person pulls the mask up halfway
    next_person_may_step_up()
    g.feed_many(seen(face(Mask.WITHOUT, track=7)), 3)  # someone else
    assert [d.reason for d in g.logs()] == ["no_mask", "mask_incorrect", "no_mask"]
