"""Events into the decision core and actions out of it: plain, frozen data.

Nothing here imports a device, UI or model library, so every rule of the gate can be
tested with these objects alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Tuple, Union

Box = Tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels


class Mask(str, Enum):
    """The three classes of the mask model (names as in the Kaggle dataset), and UNSURE: the kiosk's reading
    of a face the model calls "incorrect" without being sure (its calibrated probability is below the
    threshold, ``kiosk.vision.mask.Calibration``). The model never outputs UNSURE; the gate asks the
    resident to adjust the mask and keeps looking instead of denying."""

    WITH = "with_mask"
    WITHOUT = "without_mask"
    INCORRECT = "mask_weared_incorrect"
    UNSURE = "mask_unsure"


@dataclass(frozen=True)
class FaceObservation:
    """One face in one frame, as the vision worker saw it."""

    track_id: int
    mask: Mask
    confidence: float
    box: Box

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


@dataclass(frozen=True)
class FacesSeen:
    """All faces in one processed frame; an empty tuple means nobody is in view."""

    faces: Tuple[FaceObservation, ...] = ()
    frame_id: int = 0


@dataclass(frozen=True)
class PassCheck:
    """The verdict on one QR payload, made at the edge (crypto + registry) before the core sees it."""

    valid: bool
    reason: str  # "ok" or one of kiosk.store.passes.REASONS
    resident_id: Optional[int] = None
    resident_name: Optional[str] = None
    serial: Optional[int] = None


@dataclass(frozen=True)
class PassPresented:
    """A QR code was read from a frame and checked."""

    check: PassCheck
    frame_id: int = 0


@dataclass(frozen=True)
class Heard:
    """Something was said to the kiosk; intent is "enter", "help" or None (ignored)."""

    text: str
    intent: Optional[str] = None


@dataclass(frozen=True)
class Tick:
    """Time passed; lets timeouts fire when nothing else happens."""


Event = Union[FacesSeen, PassPresented, Heard, Tick]


# ---- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    key: str  # prompt key in kiosk.core.prompts.PROMPTS (lets TTS cache by key)
    text: str


@dataclass(frozen=True)
class Show:
    screen: str  # "idle", "engaged", "checking", "granted", "denied"
    detail: Tuple[Tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        return dict(self.detail)


@dataclass(frozen=True)
class OpenGate:
    ms: int = 0  # 0: the gate's configured pulse length


@dataclass(frozen=True)
class Decision:
    """One access-log record as the core knows it; the edge fills in what the gate really did."""

    outcome: str  # "granted", "denied", "abandoned"
    reason: str
    mask: Optional[str] = None
    pass_reason: Optional[str] = None
    resident_id: Optional[int] = None
    resident_name: Optional[str] = None
    pass_serial: Optional[int] = None
    intent: Optional[str] = None
    gate_opened: bool = False


@dataclass(frozen=True)
class Log:
    decision: Decision = field(default_factory=lambda: Decision("abandoned", "unknown"))


Action = Union[Say, Show, OpenGate, Log]
