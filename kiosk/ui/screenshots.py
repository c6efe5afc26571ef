"""``dabai-kiosk screenshots``: the kiosk window in its idle, checking, granted and denied states and
each operator page, rendered offscreen at the kiosk's screen sizes, plus a contact sheet.

The kiosk states are reached the real way: events go through the decision core (``step``) and
the window follows the actions it returns; the camera frame is a rendered demo frame.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.config import PolicyConfig
from kiosk.core.events import FaceObservation, FacesSeen, Mask, PassCheck, PassPresented
from kiosk.core.machine import State, step
from kiosk.vision.capture import Frame
from kiosk.vision.worker import FrameResult

log = logging.getLogger(__name__)

SIZES: Tuple[Tuple[int, int], ...] = ((1920, 1080), (1080, 1920), (1024, 600))
STATES = ("idle", "checking", "granted", "denied", "unavailable")  # unavailable: idle with the camera gone
# Where the face detector finds the demo faces in these frames (boxes fixed so no model is needed).
FACE_BOXES = {"person1": (220, 224, 337, 354), "person2": (230, 232, 335, 349)}
VALID = PassCheck(True, "ok", 1, "张三", 5)


def _frame(state: str) -> Tuple[np.ndarray, Tuple[FaceObservation, ...]]:
    from kiosk.demo.scenes import Shot, render

    if state in ("idle", "unavailable"):
        return render([], 1, seed=3)[0], ()
    mask = Mask.WITHOUT if state == "denied" else Mask.WITH
    person = "person2" if state == "denied" else "person1"
    code = None if state == "denied" else "DABAI1.screenshot"
    image = render([Shot(0, 1, person=(person, mask.value), code=code)], 1, seed=3)[0]
    return image, (FaceObservation(1, mask, 0.93, FACE_BOXES[person]),)


def _events(state: str, faces: Tuple[FaceObservation, ...]) -> List[Any]:
    seen = FacesSeen(faces, 0)
    if state == "checking":  # engaged, the pass is valid, the mask vote not settled yet
        return [seen, PassPresented(VALID)]
    if state == "granted":
        return [seen, seen, seen, PassPresented(VALID)]
    if state == "denied":
        return [seen, seen, seen]
    return []


def drive(window: Any, bridge: Any, state: str, policy: PolicyConfig) -> None:
    """Bring ``window`` to ``state`` through the decision core and show the matching frame."""
    from PyQt5.QtWidgets import QApplication

    image, faces = _frame(state)
    core = State()
    window.on_action(_idle_show(), core)
    problems = {"camera": "unavailable: /dev/video0 stopped giving frames",
                "microphone": "no voice input: no recognizer model installed"} if state == "unavailable" else {}
    for part in ("camera", "microphone"):
        window.set_status(part, problems.get(part, "ok"))
    for i, event in enumerate(_events(state, faces)):
        core, actions = step(core, event, 0.1 * i, policy)
        for action in actions:
            window.on_action(action, core)
    QApplication.processEvents()
    result = FrameResult(Frame(image, 1, 0.0, time.perf_counter()), faces, [], [], 0.0)
    bridge.offer_frame(result)
    QApplication.processEvents()


def _idle_show() -> Any:
    from kiosk.core.events import Show

    return Show("idle")


def _grab(widget: Any, path: Path) -> Path:
    """Saves what ``widget`` shows; the suffix picks the format (.jpg at quality 85, smaller for the README)."""
    from PyQt5.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
    pixmap = widget.grab()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not pixmap.save(str(path), None, 85 if path.suffix == ".jpg" else -1):
        raise OSError("could not write {}".format(path))
    return path


def render_kiosk(out: Path, sizes: Sequence[Tuple[int, int]] = SIZES, states: Sequence[str] = STATES,
                 suffix: str = ".png") -> List[Path]:
    from kiosk.ui.bridge import UiBridge
    from kiosk.ui.window import KioskWindow

    policy = PolicyConfig()
    written = []
    for w, h in sizes:
        bridge = UiBridge()
        window = KioskWindow(bridge, policy)
        window.resize(w, h)
        window.show()
        for state in states:
            drive(window, bridge, state, policy)
            written.append(_grab(window, out / "kiosk-{}-{}x{}{}".format(state, w, h, suffix)))
        window.close()
        window.deleteLater()
    return written


def render_operator(out: Path, sizes: Sequence[Tuple[int, int]] = SIZES,
                    suffix: str = ".png") -> Tuple[List[Path], Optional[str]]:
    """Each operator page at each size; (files, why not) when the operator screen is not available."""
    try:
        from kiosk.ui.operator import PAGES, OperatorScreen  # type: ignore[attr-defined]
    except ImportError as exc:
        return [], "operator screen not available: {}".format(exc)
    from kiosk.config import Home
    from kiosk.demo.run import prepare_home

    written: List[Path] = []
    with tempfile.TemporaryDirectory(prefix="dabai-shots-") as tmp:
        home = Home(Path(tmp) / "home")
        prepare_home(home, None, Path(tmp) / "speech")

        def status() -> Dict[str, Any]:
            return {"fps": 14.8, "vision_ms_p50": 13.7, "frame_to_display_ms_p50": 21.0, "detector": "yunet_n_dynamic + mask",
                    "backend": "onnxruntime", "camera": "ok", "microphone": "unavailable: no recognizer model",
                    "gate": "sim", "voice": "espeak-ng cmn-latn-pinyin"}

        for w, h in sizes:
            screen = OperatorScreen(home, status)
            screen.resize(w, h)
            screen.show()
            for page in PAGES:
                screen.show_page(page)
                written.append(_grab(screen, out / "operator-{}-{}x{}{}".format(page, w, h, suffix)))
            screen.close()
            screen.deleteLater()
    return written, None


def contact_sheet(paths: Sequence[Path], out: Path, width: int = 400, portrait_height: int = 480) -> Path:
    """One row per screen size (the ``-WxH`` at the end of each name), thumbnails with their names (JPEG)."""
    from PIL import Image, ImageDraw

    from kiosk.fonts import pil_font

    rows: Dict[str, List[Any]] = {}
    for path in paths:
        image = Image.open(str(path)).convert("RGB")
        if image.height > image.width:
            size = (int(image.width * portrait_height / image.height), portrait_height)
        else:
            size = (width, int(image.height * width / image.width))
        rows.setdefault(path.stem.rsplit("-", 1)[-1], []).append((path.stem, image.resize(size, Image.LANCZOS)))
    gap, label = 10, 26
    sheet_w = max(sum(im.width + gap for _, im in row) for row in rows.values()) + gap
    sheet_h = sum(max(im.height for _, im in row) + label + gap for row in rows.values()) + gap
    sheet = Image.new("RGB", (sheet_w, sheet_h), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    y = gap
    for row in rows.values():
        x = gap
        for name, image in row:
            sheet.paste(image, (x, y))
            draw.text((x, y + image.height + 3), name, fill=(40, 40, 40), font=pil_font(15))
            x += image.width + gap
        y += max(im.height for _, im in row) + label + gap
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(str(out), quality=80, optimize=True)
    return out


def run_screenshots(out: Path, sizes: Sequence[Tuple[int, int]] = SIZES, operator: bool = True,
                    echo: Callable[[str], None] = print, fmt: str = "png") -> int:
    suffix = "." + fmt
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # screenshots never need a display
    from PyQt5.QtWidgets import QApplication

    from kiosk.ui.app import quiet_qt_messages
    from kiosk.ui.fonts import use_cjk_font
    from kiosk.ui.theme import apply_theme

    quiet_qt_messages()
    app = QApplication.instance() or QApplication(["dabai-kiosk"])
    apply_theme(app)
    family = use_cjk_font(app)
    if family is None:
        echo("warning: no CJK font; Chinese will show as boxes (apt-get install fonts-noto-cjk)")
    kiosk_files = render_kiosk(out, sizes, suffix=suffix)
    operator_files: List[Path] = []
    if operator:
        operator_files, why = render_operator(out, sizes, suffix=suffix)
        if why:
            echo("warning: {}".format(why))
    for path in kiosk_files + operator_files:
        echo(str(path))
    sheets = [contact_sheet(kiosk_files, out / "kiosk-contact-sheet.jpg")]
    if operator_files:
        sheets.append(contact_sheet(operator_files, out / "operator-contact-sheet.jpg", width=320, portrait_height=400))
    for sheet in sheets:
        echo(str(sheet))
    return 0
