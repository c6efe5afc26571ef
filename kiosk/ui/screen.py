"""What the kiosk window shows, as plain data: the decision core's actions folded into a ``Screen``.

Pure (no Qt), so the mapping from actions to what a resident sees is tested without a display.
The window only renders the current ``Screen``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Tuple

from kiosk.config import PolicyConfig
from kiosk.core.events import Mask, OpenGate, Say, Show
from kiosk.core.prompts import PROMPTS

WAITING, OK, FAILED, OFF = "waiting", "ok", "failed", "off"
STEP_NAMES = (("mask", "口罩"), ("pass", "通行码"), ("request", "语音请求"))
STEP_WORDS = {WAITING: "等待", OK: "通过", FAILED: "未通过", OFF: "无需"}

# UNSURE: the model's "incorrect" below its calibrated threshold; the kiosk asks to adjust and keeps looking
MASK_LABELS = {Mask.WITH: "已戴口罩", Mask.WITHOUT: "未戴口罩", Mask.INCORRECT: "口罩未戴好", Mask.UNSURE: "请调整口罩"}

ATTRACT_TITLE = "请说：你好大白"
ATTRACT_PASS = "或直接出示通行二维码"
ATTRACT_PASS_ONLY = "请出示通行二维码"  # the title when the kiosk cannot hear
ATTRACT_HOW = "打开手机上的通行码，屏幕朝向摄像头"
ATTRACT_MASK = "请佩戴口罩，遮住口鼻"
CHECKING = "正在核验，请稍候"
# The attract screen while the camera (or, with masks required, the mask model) is down: nothing can be checked,
# so it does not ask for a QR code or a mask; it says what the resident can do.
UNAVAILABLE_TITLE = "暂时无法自助通行"
UNAVAILABLE_HOW = "设备正在自动恢复，请稍候片刻，或联系物业开门"

Steps = Tuple[Tuple[str, str], ...]  # (step, WAITING|OK|FAILED|OFF) in STEP_NAMES order


@dataclass(frozen=True)
class Screen:
    page: str = "attract"  # attract, session, granted, denied
    prompt: str = ""  # the big sentence: the latest thing the kiosk said, or the result
    name: str = ""  # the resident's name on a grant
    reason: str = ""  # the reason key on a denial
    steps: Steps = ()
    track_id: Optional[int] = None  # the face being served (drawn bolder)
    others: int = 0  # other faces in view
    gate_opened: bool = False


def steps_of(state: Any, policy: PolicyConfig) -> Steps:
    """Each requirement's progress from the core's state (``kiosk.core.machine.State``)."""
    mask: Optional[Mask] = getattr(state, "mask", None)
    if not policy.mask_required:
        mask_step = OK if mask == Mask.WITH else OFF
    elif mask is None or mask == Mask.UNSURE:  # unsure is not a verdict: still waiting for a sure reading
        mask_step = WAITING
    elif mask == Mask.WITH or (mask == Mask.INCORRECT and not policy.incorrect_counts_as_unmasked):
        mask_step = OK
    else:
        mask_step = FAILED
    check = getattr(state, "check", None)
    if check is None:
        pass_step = WAITING if policy.pass_required else OFF
    else:
        pass_step = OK if check.valid else (FAILED if policy.pass_required else OFF)
    heard = getattr(state, "intent", None) == "enter"
    request_step = OK if heard else (WAITING if policy.request_required else OFF)
    return (("mask", mask_step), ("pass", pass_step), ("request", request_step))


def idle_screen(policy: PolicyConfig) -> Screen:
    return Screen(steps=steps_of(None, policy))


def follow(screen: Screen, action: Any, state: Any, policy: PolicyConfig) -> Screen:
    """The screen after one action of the core (``state`` is the core's state after the step)."""
    if isinstance(action, Show):
        detail = action.as_dict()
        steps = steps_of(state, policy)
        track = getattr(state, "track_id", None)
        others = int(getattr(state, "others", 0) or 0)
        if action.screen == "idle":
            return idle_screen(policy)
        if action.screen == "granted":
            return Screen("granted", detail.get("prompt", ""), detail.get("name", ""), "", steps, track, others,
                          gate_opened=screen.gate_opened)
        if action.screen == "denied":
            reason = detail.get("reason", "")
            return Screen("denied", detail.get("prompt", "") or PROMPTS.get(reason, ""), "", reason, steps, track, others)
        # engaged / checking: keep what was last said to this person
        prompt = screen.prompt if screen.page == "session" else ""
        if action.screen == "checking" and not prompt:
            prompt = CHECKING
        return Screen("session", prompt, "", "", steps, track, others)
    if isinstance(action, Say):
        if screen.page in ("granted", "denied"):
            return screen  # the result page already shows its sentence
        if screen.page == "attract" and action.key != "help":
            return replace(screen, page="session", prompt=action.text)
        return replace(screen, prompt=action.text)
    if isinstance(action, OpenGate):
        return replace(screen, gate_opened=True)
    return screen


def parse_size(text: str) -> Tuple[int, int]:
    """``"1920x1080"`` → (1920, 1080); raises ValueError."""
    w, _, h = text.lower().partition("x")
    size = (int(w), int(h))
    if min(size) < 100:
        raise ValueError("screen size {!r} is too small".format(text))
    return size
