"""The kiosk window: live camera view with boxed faces, big Chinese prompts, a step indicator,
the granted/denied result, an attract screen when idle and banners for missing devices.

It only renders: what to show comes from the decision core's actions (``kiosk.ui.screen``) and
from the bridge's signals; nothing here waits on a model, a device or a file. Landscape screens
put the camera left and the panel right, portrait screens stack them; every size derives from
the screen's short side, so 1920×1080, 1080×1920 and 1024×600 use the same layout.
"""

from __future__ import annotations

import html
import time
from typing import Dict, Optional

from PyQt5.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QKeySequence, QPainter, QPainterPath, QPen
from PyQt5.QtWidgets import (
    QBoxLayout,
    QHBoxLayout,
    QLabel,
    QShortcut,
    QSizePolicy,
    QStackedLayout,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kiosk.config import PolicyConfig
from kiosk.core.events import Mask
from kiosk.ui.bridge import Metrics, ShownFrame, UiBridge
from kiosk.ui.fonts import NO_FONT
from kiosk.ui.screen import (
    ATTRACT_HOW,
    ATTRACT_MASK,
    ATTRACT_PASS,
    ATTRACT_PASS_ONLY,
    ATTRACT_TITLE,
    FAILED,
    MASK_LABELS,
    OFF,
    OK,
    STEP_NAMES,
    STEP_WORDS,
    UNAVAILABLE_HOW,
    UNAVAILABLE_TITLE,
    Screen,
    follow,
    idle_screen,
)

GREEN = QColor(30, 142, 62)
RED = QColor(197, 34, 31)
ORANGE = QColor(227, 116, 0)
NAVY = QColor(22, 33, 48)
GREY = QColor(120, 130, 140)
CLASS_COLOURS = {Mask.WITH: QColor(52, 199, 89), Mask.WITHOUT: QColor(235, 64, 52), Mask.INCORRECT: QColor(255, 159, 10),
                 Mask.UNSURE: ORANGE}
PAGE_COLOURS = {"granted": GREEN, "denied": RED}

BANNERS = {  # part → what the resident (and the operator) reads; the technical detail follows in small print
    "camera": "摄像头不可用，正在重新连接",
    "microphone": "麦克风不可用：请直接出示通行二维码",
    "model": "识别模型不可用：暂时无法核验口罩",
    "gate": "闸机故障，请联系物业",
    "voice": "语音不可用：请看屏幕提示",
    "font": NO_FONT,
}
BANNER_ORDER = ("camera", "model", "gate", "microphone", "voice", "font")
HOLD_MS = 3000  # long press in the top-left corner that opens the operator screen


def sentences(text: str) -> str:
    """One sentence a line: Chinese wraps between any two characters, which splits words mid-sentence."""
    return text.replace("。", "。\n").strip()


def _font(px: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(max(9, int(round(px))))
    font.setBold(bold)
    return font


class VideoView(QWidget):
    """The newest camera frame, letterboxed, each face boxed and labelled in its mask class colour."""

    def __init__(self, bridge: UiBridge, metrics: Metrics, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.metrics = metrics
        self.shown: Optional[ShownFrame] = None
        self._fresh = False
        self.screen = Screen()
        self.camera_ok = True
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(160, 120)

    def border(self) -> int:
        return max(4, min(self.width(), self.height()) // 60)

    def set_frame(self, shown: ShownFrame) -> None:
        self.shown, self._fresh = shown, True
        self.update()

    def set_screen(self, screen: Screen) -> None:
        changed = (screen.page, screen.track_id) != (self.screen.page, self.screen.track_id)
        self.screen = screen
        if changed:  # the border colour or the bold box moves
            self.update()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        b = self.border()
        self.bridge.display_size = (max(1, self.width() - 2 * b), max(1, self.height() - 2 * b))

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), QColor(12, 14, 18))
        b = self.border()
        colour = PAGE_COLOURS.get(self.screen.page)
        if colour is not None:
            p.fillRect(self.rect(), colour)
            p.fillRect(self.rect().adjusted(b, b, -b, -b), QColor(12, 14, 18))
        shown = self.shown
        if shown is None or not self.camera_ok:
            p.setPen(QColor(170, 175, 180))
            p.setFont(_font(min(self.width(), self.height()) / 14))
            p.drawText(self.rect(), Qt.AlignCenter, "摄像头准备中…" if self.camera_ok else "摄像头不可用")
            if shown is None:
                return
        if not self.camera_ok:
            return
        x0 = (self.width() - shown.image.width()) // 2
        y0 = (self.height() - shown.image.height()) // 2
        p.drawImage(x0, y0, shown.image)
        label_px = max(12.0, shown.image.height() / 26)
        p.setFont(_font(label_px, bold=True))
        metrics = p.fontMetrics()
        for face, (x1, y1, x2, y2) in shown.faces:
            colour = CLASS_COLOURS.get(face.mask, QColor(200, 200, 200))
            primary = face.track_id == self.screen.track_id
            p.setPen(QPen(colour, max(2.0, label_px / (5 if primary else 9))))
            p.setBrush(Qt.NoBrush)
            p.drawRect(QRectF(x0 + x1, y0 + y1, x2 - x1, y2 - y1))
            text = "{} {:.0f}%".format(MASK_LABELS.get(face.mask, str(face.mask)), face.confidence * 100)
            tw, th = metrics.horizontalAdvance(text) + int(label_px * 0.6), metrics.height() + 4
            ty = y0 + y1 - th if y1 - th >= 0 else y0 + y2
            chip = QRectF(x0 + x1 - 1, ty, tw, th)
            p.fillRect(chip, colour)
            p.setPen(QColor(20, 20, 20) if face.mask in (Mask.INCORRECT, Mask.UNSURE) else QColor(255, 255, 255))
            p.drawText(chip, Qt.AlignCenter, text)
        if self._fresh:  # the frame has reached the screen now: the latency ends here
            self._fresh = False
            self.metrics.frame_shown(shown.wall, shown.offered)


class StepBar(QWidget):
    """口罩 / 通行码 / 语音请求: each waiting, passed, failed or not needed."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.steps = idle_screen(PolicyConfig()).steps
        self.unit = 10.0
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def set_unit(self, unit: float) -> None:
        self.unit = unit
        self.setFixedHeight(int(unit * 15))
        self.update()

    def set_steps(self, steps: tuple) -> None:
        if steps != self.steps:
            self.steps = steps
            self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        u = self.unit
        r = u * 3.2
        n = len(STEP_NAMES)
        col = self.width() / n
        cy = r + u * 0.6
        states = dict(self.steps)
        for i in range(n - 1):  # the line that joins the circles
            p.setPen(QPen(QColor(255, 255, 255, 70), max(2.0, u * 0.35)))
            p.drawLine(QPointF(col * (i + 0.5) + r, cy), QPointF(col * (i + 1.5) - r, cy))
        for i, (key, name) in enumerate(STEP_NAMES):
            state = states.get(key, OFF)
            cx = col * (i + 0.5)
            circle = QRectF(cx - r, cy - r, 2 * r, 2 * r)
            white = QColor(255, 255, 255)
            if state == OK:
                p.setPen(QPen(white, u * 0.35))  # the ring keeps it visible on the green result panel
                p.setBrush(GREEN)
                p.drawEllipse(circle)
                p.setPen(QPen(white, u * 0.7, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
                path = QPainterPath(QPointF(cx - r * 0.45, cy + r * 0.02))
                path.lineTo(QPointF(cx - r * 0.1, cy + r * 0.38))
                path.lineTo(QPointF(cx + r * 0.5, cy - r * 0.35))
                p.setBrush(Qt.NoBrush)
                p.drawPath(path)
            elif state == FAILED:
                p.setPen(QPen(white, u * 0.35))
                p.setBrush(RED)
                p.drawEllipse(circle)
                p.setPen(QPen(white, u * 0.7, Qt.SolidLine, Qt.RoundCap))
                d = r * 0.4
                p.drawLine(QPointF(cx - d, cy - d), QPointF(cx + d, cy + d))
                p.drawLine(QPointF(cx - d, cy + d), QPointF(cx + d, cy - d))
            elif state == OFF:
                p.setPen(QPen(QColor(255, 255, 255, 60), u * 0.35, Qt.DashLine))
                p.setBrush(Qt.NoBrush)
                p.drawEllipse(circle)
            else:  # waiting: three dots
                p.setPen(QPen(QColor(255, 255, 255, 200), u * 0.35))
                p.setBrush(Qt.NoBrush)
                p.drawEllipse(circle)
                p.setPen(Qt.NoPen)
                p.setBrush(QColor(255, 255, 255, 220))
                for dx in (-0.45, 0.0, 0.45):
                    p.drawEllipse(QPointF(cx + dx * r, cy), u * 0.4, u * 0.4)
            alpha = 110 if state == OFF else 255
            p.setPen(QColor(255, 255, 255, alpha))
            p.setFont(_font(u * 2.6, bold=True))
            p.drawText(QRectF(col * i, cy + r + u * 0.5, col, u * 3.4), Qt.AlignCenter, name)
            p.setFont(_font(u * 2.1))
            p.drawText(QRectF(col * i, cy + r + u * 3.9, col, u * 2.8), Qt.AlignCenter, STEP_WORDS[state])


class ResultMark(QWidget):
    """A large tick (granted) or cross (denied) in a white ring."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.granted = True

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        side = min(self.width(), self.height())
        r = side * 0.42
        cx, cy = self.width() / 2, self.height() / 2
        pen = QPen(QColor(255, 255, 255), max(3.0, side * 0.07), Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin)
        p.setPen(pen)
        p.setBrush(Qt.NoBrush)
        p.drawEllipse(QPointF(cx, cy), r, r)
        if self.granted:
            path = QPainterPath(QPointF(cx - r * 0.45, cy + r * 0.02))
            path.lineTo(QPointF(cx - r * 0.1, cy + r * 0.38))
            path.lineTo(QPointF(cx + r * 0.5, cy - r * 0.35))
            p.drawPath(path)
        else:
            d = r * 0.42
            p.drawLine(QPointF(cx - d, cy - d), QPointF(cx + d, cy + d))
            p.drawLine(QPointF(cx - d, cy + d), QPointF(cx + d, cy - d))


class PassHint(QWidget):
    """A phone showing a QR code: how to show the pass."""

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        h = self.height() * 0.96
        w = h * 0.56
        x, y = (self.width() - w) / 2, (self.height() - h) / 2
        p.setPen(QPen(QColor(255, 255, 255), max(2.0, h * 0.03)))
        p.setBrush(QColor(255, 255, 255, 25))
        p.drawRoundedRect(QRectF(x, y, w, h), w * 0.14, w * 0.14)
        q = w * 0.72  # the code on the screen
        qx, qy = x + (w - q) / 2, y + (h - q) / 2
        p.setPen(Qt.NoPen)
        p.setBrush(QColor(255, 255, 255))
        p.drawRect(QRectF(qx, qy, q, q))
        cell = q / 7
        p.setBrush(NAVY)
        for fx, fy in ((0, 0), (4, 0), (0, 4)):  # the three finder patterns
            p.drawRect(QRectF(qx + (fx + 0.3) * cell, qy + (fy + 0.3) * cell, 2.4 * cell, 2.4 * cell))
        for cx, cy in ((4.3, 4.3), (5.6, 5.2), (4.6, 5.8), (3.4, 3.6), (5.7, 4.0), (3.3, 5.9)):
            p.drawRect(QRectF(qx + cx * cell, qy + cy * cell, 0.8 * cell, 0.8 * cell))


class CornerHotspot(QWidget):
    """An invisible square in the top-left corner: holding it for ``hold_ms`` asks for the operator screen.
    While it is held a ring fills up, so the operator sees the hold is counted (and a resident who leans on
    the corner sees something happening, then nothing once they let go)."""

    held = pyqtSignal()
    TICK_MS = 50

    def __init__(self, hold_ms: int, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.hold_ms = hold_ms
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(hold_ms)
        self.timer.timeout.connect(self._done)
        self.ticker = QTimer(self)
        self.ticker.setInterval(self.TICK_MS)
        self.ticker.timeout.connect(self.update)
        self._started = 0.0

    @property
    def progress(self) -> float:
        """0..1 of the hold while the corner is held, else 0."""
        if not self.timer.isActive():
            return 0.0
        return min(1.0, (time.monotonic() - self._started) * 1000.0 / max(1, self.hold_ms))

    def _stop(self) -> None:
        self.timer.stop()
        self.ticker.stop()
        self.update()

    def _done(self) -> None:
        self._stop()
        self.held.emit()

    def mousePressEvent(self, event: object) -> None:  # noqa: N802
        self._started = time.monotonic()
        self.timer.start()
        self.ticker.start()
        self.update()

    def mouseReleaseEvent(self, event: object) -> None:  # noqa: N802
        self._stop()

    def mouseMoveEvent(self, event: object) -> None:  # noqa: N802
        pos = event.pos()  # type: ignore[attr-defined]
        if not self.rect().contains(pos):  # slid out of the corner: not a deliberate hold
            self._stop()

    def paintEvent(self, event: object) -> None:  # noqa: N802
        done = self.progress
        if done <= 0.0:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        side = min(self.width(), self.height())
        ring = QRectF(side * 0.2, side * 0.2, side * 0.6, side * 0.6)
        p.setPen(QPen(QColor(255, 255, 255, 90), side * 0.08))
        p.drawEllipse(ring)
        p.setPen(QPen(QColor(255, 255, 255), side * 0.08))
        p.drawArc(ring, 90 * 16, -int(360 * 16 * done))


class KioskWindow(QWidget):
    """The resident-facing window. Feed it through ``bridge``; it emits ``operator_requested``
    on the hidden gesture (long press top-left, Ctrl+Shift+O or F12) and ``closed`` when closed."""

    operator_requested = pyqtSignal()
    closed = pyqtSignal()

    def __init__(
        self,
        bridge: UiBridge,
        policy: PolicyConfig,
        community: str = "大白小区",
        metrics: Optional[Metrics] = None,
        demo: bool = False,
        hold_ms: int = HOLD_MS,
        parent: Optional[QWidget] = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("大白 · {}".format(community))
        self.bridge = bridge
        self.policy = policy
        self.metrics = metrics or Metrics(parent=self)
        self.demo = demo
        self.screen = idle_screen(policy)
        self.problems: Dict[str, str] = {}
        self.gate_fault = False
        self.voice_input = True
        self._panel_colour = ""
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(self.backgroundRole(), QColor(12, 14, 18))
        pal.setColor(self.foregroundRole(), QColor(255, 255, 255))
        self.setPalette(pal)

        # ---- the kiosk page: banners over [camera | panel] ----
        self.kiosk_page = QWidget()
        outer = QVBoxLayout(self.kiosk_page)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.banner_box = QWidget()
        self.banner_layout = QVBoxLayout(self.banner_box)
        self.banner_layout.setContentsMargins(0, 0, 0, 0)
        self.banner_layout.setSpacing(0)
        self.banners: Dict[str, QLabel] = {}
        for part in ("notice",) + BANNER_ORDER:
            label = QLabel()
            label.setWordWrap(True)
            label.setTextFormat(Qt.RichText)
            colour = "#1a73e8" if part == "notice" else ("#c5221f" if part in ("camera", "gate", "model") else "#e37400")
            label.setStyleSheet("background:{}; color:white;".format(colour))
            label.hide()
            self.banners[part] = label
            if part != "notice":  # the notice sits above both pages: the operator reads it after saving
                self.banner_layout.addWidget(label)
        outer.addWidget(self.banner_box)

        self.body = QBoxLayout(QBoxLayout.LeftToRight)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(0)
        self.video = VideoView(bridge, self.metrics)
        self.panel = QWidget()
        self.panel.setObjectName("panel")
        self.panel.setAttribute(Qt.WA_StyledBackground, True)
        self._build_panel()
        self.body.addWidget(self.video, 3)
        self.body.addWidget(self.panel, 2)
        outer.addLayout(self.body, 1)

        top = QVBoxLayout(self)
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(0)
        # The notice ("saved", "reopened: camera") floats over the top edge instead of taking a row of the layout:
        # showing and hiding it must not move the screen under the operator's finger.
        self.banners["notice"].setParent(self)
        pages = QWidget()
        top.addWidget(pages, 1)
        self.root = QStackedLayout(pages)  # the kiosk page, or the operator screen over it
        self.root.addWidget(self.kiosk_page)
        self.operator: Optional[QWidget] = None

        self.hotspot = CornerHotspot(hold_ms, self)
        self.hotspot.held.connect(self.operator_requested.emit)
        for keys in ("Ctrl+Shift+O", "F12"):  # application-wide: they keep working after a dialog was closed
            QShortcut(QKeySequence(keys), self, activated=self.operator_requested.emit, context=Qt.ApplicationShortcut)
        if demo:  # a demo may be left with Esc or Q; the real kiosk only through the operator screen
            for keys in ("Esc", "Q"):
                QShortcut(QKeySequence(keys), self, activated=self.close)

        self.notice_timer = QTimer(self)
        self.notice_timer.setSingleShot(True)
        self.notice_timer.timeout.connect(self._hide_notice)  # a bound slot: dropped with the window, a lambda is not
        self.clock_timer = QTimer(self)
        self.clock_timer.timeout.connect(self._tick_clock)
        self.clock_timer.start(1000)
        self._tick_clock()

        bridge.frame_ready.connect(self._on_frame)
        bridge.action.connect(self.on_action)
        bridge.status.connect(self.set_status)
        bridge.notice.connect(self.show_notice)
        bridge.caption.connect(self.set_caption)
        self.set_community(community)
        self.render_screen()

    # ---- building ----------------------------------------------------------------------------

    def _label(self, text: str = "", align: int = Qt.AlignCenter, wrap: bool = True) -> QLabel:
        label = QLabel(text)
        label.setAlignment(Qt.Alignment(align))
        label.setWordWrap(wrap)
        label.setStyleSheet("color: white; background: transparent;")
        return label

    def _build_panel(self) -> None:
        lay = QVBoxLayout(self.panel)
        self.panel_layout = lay
        head = QHBoxLayout()
        self.community_label = self._label("", Qt.AlignLeft | Qt.AlignVCenter, wrap=False)
        self.clock_label = self._label("", Qt.AlignRight | Qt.AlignVCenter, wrap=False)
        head.addWidget(self.community_label, 1)
        head.addWidget(self.clock_label)
        lay.addLayout(head)

        self.pages = QStackedWidget()
        # attract
        self.attract = QWidget()
        a = QVBoxLayout(self.attract)
        a.setContentsMargins(0, 0, 0, 0)
        self.attract_title = self._label(ATTRACT_TITLE)
        self.attract_hint = PassHint()
        self.attract_pass = self._label(ATTRACT_PASS)
        self.attract_how = self._label(ATTRACT_HOW)
        self.attract_mask = self._label(ATTRACT_MASK)
        a.addStretch(1)
        a.addWidget(self.attract_title)
        a.addStretch(1)
        a.addWidget(self.attract_hint)
        a.addWidget(self.attract_pass)
        a.addWidget(self.attract_how)
        a.addStretch(1)
        a.addWidget(self.attract_mask)
        a.addStretch(1)
        # session
        self.session = QWidget()
        s = QVBoxLayout(self.session)
        s.setContentsMargins(0, 0, 0, 0)
        self.session_title = self._label("正在核验")
        self.session_prompt = self._label("")
        self.session_others = self._label("")
        s.addStretch(1)
        s.addWidget(self.session_title)
        s.addStretch(1)
        s.addWidget(self.session_prompt)
        s.addStretch(2)
        s.addWidget(self.session_others)
        # result
        self.result = QWidget()
        r = QVBoxLayout(self.result)
        r.setContentsMargins(0, 0, 0, 0)
        self.result_mark = ResultMark()
        self.result_title = self._label("")
        self.result_text = self._label("")
        self.result_gate = self._label("")
        r.addStretch(1)
        r.addWidget(self.result_mark)
        r.addWidget(self.result_title)
        r.addWidget(self.result_text)
        r.addWidget(self.result_gate)
        r.addStretch(1)
        for page in (self.attract, self.session, self.result):
            self.pages.addWidget(page)
        lay.addWidget(self.pages, 1)

        self.step_bar = StepBar()
        lay.addWidget(self.step_bar)
        self.caption_label = self._label("")
        self.caption_label.setStyleSheet("color: rgba(255,255,255,160); background: transparent;")
        self.caption_label.hide()
        lay.addWidget(self.caption_label)

    # ---- layout for the screen's size and orientation ----------------------------------------

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        self._relayout()

    def _relayout(self) -> None:
        w, h = self.width(), self.height()
        portrait = h > w
        u = min(w, h) / 100.0 * (1.2 if portrait else 1.0)  # a portrait panel is full-width: larger text fits
        self.body.setDirection(QBoxLayout.TopToBottom if portrait else QBoxLayout.LeftToRight)
        if portrait:  # the camera keeps 4:3 across the width; the panel gets the rest
            self.video.setMinimumSize(160, 120)
            self.video.setMaximumSize(16777215, int(w * 3 / 4))
            self.panel.setMinimumWidth(0)
            self.panel.setMaximumWidth(16777215)
        else:
            self.video.setMaximumSize(16777215, 16777215)
            self.panel.setMinimumWidth(int(w * 0.36))
            self.panel.setMaximumWidth(int(w * 0.42))
        pad = int(u * 3)
        self.panel_layout.setContentsMargins(pad, int(u * 1.5), pad, int(u * 1.5))
        self.panel_layout.setSpacing(int(u))
        for label in self.banners.values():
            label.setFont(_font(u * 2.6, bold=True))
            label.setContentsMargins(int(u * 2), int(u * 0.8), int(u * 2), int(u * 0.8))
        self.community_label.setFont(_font(u * 2.8, bold=True))
        self.clock_label.setFont(_font(u * 2.8))
        self.attract_title.setFont(_font(u * 6.4, bold=True))
        self.attract_hint.setFixedHeight(int(u * 16))
        self.attract_pass.setFont(_font(u * 4.0, bold=True))
        self.attract_how.setFont(_font(u * 2.7))
        self.attract_mask.setFont(_font(u * 3.2))
        self.session_title.setFont(_font(u * 3.2))
        self.session_prompt.setFont(_font(u * 5.2, bold=True))
        self.session_others.setFont(_font(u * 2.4))
        self.result_mark.setFixedHeight(int(u * 18))
        self.result_title.setFont(_font(u * 6.6, bold=True))
        self.result_text.setFont(_font(u * 4.4, bold=True))
        self.result_gate.setFont(_font(u * 2.8))
        self.caption_label.setFont(_font(u * 2.2))
        self.step_bar.set_unit(u)
        side = max(60, int(u * 12))
        self.hotspot.setGeometry(0, 0, side, side)
        self.hotspot.raise_()
        self._place_notice()

    # ---- following the kiosk -----------------------------------------------------------------

    def _on_frame(self) -> None:
        shown = self.bridge.take_frame()
        if shown is not None:
            self.video.set_frame(shown)

    def on_action(self, action: object, state: object) -> None:
        self.screen = follow(self.screen, action, state, self.policy)
        self.render_screen()

    def set_policy(self, policy: PolicyConfig) -> None:
        self.policy = policy
        if self.screen.page == "attract":
            self.screen = idle_screen(policy)
        self.render_screen()

    def set_community(self, name: str) -> None:
        self.community_label.setText(name)
        self.setWindowTitle("大白 · {}".format(name))

    def render_screen(self) -> None:
        screen = self.screen
        page = screen.page
        colour = PAGE_COLOURS.get(page, NAVY).name()
        if colour != self._panel_colour:  # re-styling costs a repolish: only when the colour changes
            self._panel_colour = colour
            self.panel.setStyleSheet("#panel {{ background: {}; }}".format(colour))
        if page == "attract":
            self.pages.setCurrentWidget(self.attract)
            can_check = self.can_check()
            self.attract_mask.setVisible(self.policy.mask_required and can_check)
            self.attract_hint.setVisible(can_check)
            if not can_check:
                self.attract_title.setText(UNAVAILABLE_TITLE)
            else:
                self.attract_title.setText(ATTRACT_TITLE if self.voice_input else ATTRACT_PASS_ONLY)
            self.attract_pass.setVisible(self.voice_input and can_check)
            help_text = screen.prompt if screen.prompt else ""
            self.attract_how.setText(UNAVAILABLE_HOW if not can_check else (help_text or ATTRACT_HOW))
        elif page == "session":
            self.pages.setCurrentWidget(self.session)
            self.session_prompt.setText(sentences(screen.prompt or "请稍候"))
            self.session_others.setText(
                "画面中另有 {} 人：请一位一位通过".format(screen.others) if screen.others else "")
        else:
            self.pages.setCurrentWidget(self.result)
            granted = page == "granted"
            self.result_mark.granted = granted
            self.result_mark.update()
            if granted:
                self.result_title.setText("您好，{}".format(screen.name) if screen.name else "您好")
                self.result_text.setText("欢迎回家，请您通过")
                self.result_gate.setText("闸机故障，请联系物业" if self.gate_fault else "闸机已开启")
            else:
                self.result_title.setText("未能通过")
                self.result_text.setText(sentences(screen.prompt))
                self.result_gate.setText("闸机保持关闭")
        self.step_bar.setVisible(page != "attract")
        self.step_bar.set_steps(screen.steps)
        self.video.set_screen(screen)

    def can_check(self) -> bool:
        """Whether a resident can be checked at all now: the camera works, and the mask model too when masks
        are required (a model that fell back to another backend still works)."""
        model = self.problems.get("model", "")
        return "camera" not in self.problems and not (self.policy.mask_required and model and not model.startswith("degraded"))

    def page_name(self) -> str:
        return self.screen.page

    # ---- banners, notices, captions ----------------------------------------------------------

    def set_status(self, part: str, text: str) -> None:
        """``text`` "ok" clears the part's banner; anything else shows it with ``text`` as the detail."""
        if part == "gate":
            self.gate_fault = text != "ok"
        if part == "microphone":  # without voice input the attract screen asks for the pass only
            voice = text == "ok"
            if voice != self.voice_input:
                self.voice_input = voice
                self.render_screen()
            if text == "off":  # switched off in the config: nothing is wrong
                text = "ok"
        if text == "ok":
            self.problems.pop(part, None)
        else:
            self.problems[part] = text
        label = self.banners.get(part)
        if label is None:
            return
        # A model that fell back from TensorRT to ONNX Runtime still checks masks: the operator's system page
        # says so, the resident is not told that masks cannot be checked.
        if text == "ok" or (part == "model" and text.startswith("degraded")):
            label.hide()
            if part == "camera":
                self.video.camera_ok = True
                self.video.update()
            if part in ("camera", "model"):
                self._refresh_banners()
                self.render_screen()
            return
        # The resident reads what it means for them; the technical detail goes to the log and the operator's
        # System page (``problems``), never onto the resident's screen.
        label.setText(html.escape(self._banner(part)))
        label.show()
        if part == "camera":
            self.video.camera_ok = False
            self.video.update()
        if part in ("camera", "model"):
            self._refresh_banners()
            self.render_screen()

    def _banner(self, part: str) -> str:
        """A banner's words for what is possible now: without the camera nobody can show a QR code either."""
        if part == "microphone" and not self.can_check():
            return "麦克风不可用"
        return BANNERS.get(part, part)

    def _refresh_banners(self) -> None:
        for part, label in self.banners.items():
            if part != "notice" and not label.isHidden():
                label.setText(html.escape(self._banner(part)))

    def banner_text(self, part: str) -> Optional[str]:
        label = self.banners.get(part)
        return label.text() if label is not None and not label.isHidden() else None

    def show_notice(self, text: str, ms: int = 12000) -> None:
        label = self.banners["notice"]
        label.setText(html.escape(text))
        self._place_notice()
        label.show()
        label.raise_()
        self.notice_timer.start(ms)

    def _place_notice(self) -> None:
        label = self.banners["notice"]
        label.setGeometry(0, 0, self.width(), label.heightForWidth(self.width()) if label.hasHeightForWidth()
                          else label.sizeHint().height())

    def set_caption(self, text: str) -> None:
        self.caption_label.setText(text)
        self.caption_label.setVisible(bool(text))

    def _tick_clock(self) -> None:
        self.clock_label.setText(time.strftime("%H:%M"))

    # ---- the operator screen -----------------------------------------------------------------

    def show_operator(self, widget: QWidget) -> None:
        self.hide_operator()
        self.operator = widget
        self.root.addWidget(widget)
        self.root.setCurrentWidget(widget)
        self.hotspot.hide()  # the operator screen's own top-left corner must stay usable

    def hide_operator(self) -> None:
        if self.operator is not None:
            self.root.removeWidget(self.operator)
            self.operator.deleteLater()
            self.operator = None
        self.root.setCurrentWidget(self.kiosk_page)
        self.hotspot.show()
        self.hotspot.raise_()

    def _hide_notice(self) -> None:
        self.banners["notice"].hide()

    def closeEvent(self, event: object) -> None:  # noqa: N802
        self.clock_timer.stop()
        self.notice_timer.stop()
        self.closed.emit()
        super().closeEvent(event)  # type: ignore[arg-type]
