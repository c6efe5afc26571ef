"""The operator screen: a page list on the left, one page at a time on the right.

It saves the config atomically to the data home and emits ``config_saved(config)`` with the new,
validated :class:`kiosk.config.Config`; the app applies it. ``closed`` is emitted when the operator
leaves (the 退出 button) or after ``idle_timeout_s`` without a touch, so the screen never stays open
on an unattended kiosk.

On the property office's machine (its data home holds ``office.db``) a 各门岗 page lists every gate of the community
(:class:`~kiosk.ui.operator.office.OfficePage`). On a kiosk of a fleet, a red banner on every page says when it has
been out of touch with its office for longer than ``[fleet] out_of_touch_s`` (checked every few seconds).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional

from PyQt5.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QCloseEvent, QHideEvent, QShowEvent
from PyQt5.QtWidgets import QApplication, QButtonGroup, QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from kiosk.config import Home
from kiosk.ui.operator import PAGES
from kiosk.ui.operator.devices import DevicesPage
from kiosk.ui.operator.gate import GatePage
from kiosk.ui.operator.log import LogPage
from kiosk.ui.operator.office import OfficePage, fleet_warning, office_database, out_of_touch_text
from kiosk.ui.operator.policy import PolicyPage
from kiosk.ui.operator.residents import ResidentsPage
from kiosk.ui.operator.system import SystemPage
from kiosk.ui.operator.widgets import (
    STYLE,
    Context,
    OneAtATime,
    Page,
    cjk_font,
    confirm,
    hint,
    set_role,
    touch_friendly,
)
from kiosk.ui.theme import apply_theme, light_palette

log = logging.getLogger(__name__)

PAGE_CLASSES = (ResidentsPage, PolicyPage, DevicesPage, GatePage, LogPage, SystemPage)
FLEET_CHECK_MS = 5000  # how often the out-of-touch banner is checked while the screen is shown
FLEET_BANNER_STYLE = "background: #fdecea; color: #8a1010; padding: 8px; border: 2px solid #c01c1c; font-weight: bold;"
NAV_STYLE = """
QPushButton[nav="true"] { min-height: 50px; font-size: 17px; text-align: left; padding-left: 14px;
                          background: #f4f6f8; border: 1px solid #d5dbe1; }
QPushButton[nav="true"]:checked { background: #1f6feb; color: white; border: 1px solid #1a5fcc; }
"""
INPUT_EVENTS = (QEvent.MouseButtonPress, QEvent.KeyPress, QEvent.TouchBegin, QEvent.Wheel)


class OperatorScreen(QWidget):
    """The PIN-protected operator screen (show it after :class:`PinDialog` accepts).

    ``status`` returns the app's live figures (fps, vision_ms_p50, frame_to_display_ms_p50, detector,
    backend, camera/microphone/gate/voice states; missing keys are fine). Optional: ``gate``, the app's
    own gate driver or a callable returning its current one (the gate page's test then pulses it instead
    of opening the relay a second time, which on GPIO would also release the app's pin when closed);
    ``frames``, a callable giving the app's newest camera frame (the preview uses it for the running
    camera, which cannot be opened twice); ``record``, the app's access log as ``Decision → record or None``
    (operator actions are written there, :meth:`Context.record`); ``demo``: the data home is the demo's own,
    and a banner says so on every page.

    ``PAGES`` on the class are the pages every screen has; an instance's ``PAGES`` adds the 各门岗 page (``office``)
    where the data home holds the office's database."""

    config_saved = pyqtSignal(object)
    closed = pyqtSignal()
    PAGES = PAGES

    def __init__(self, home: Home, status: Callable[[], Dict[str, Any]], parent: Optional[QWidget] = None,
                 gate: Any = None, frames: Optional[Callable[[], Any]] = None, idle_timeout_s: float = 300.0,
                 record: Optional[Callable[[Any], Any]] = None, demo: bool = False) -> None:
        super().__init__(parent)
        apply_theme(QApplication.instance())  # the kiosk's fixed look, whatever the desktop's palette
        # Its own light palette too: it is shown inside the resident window, whose dark palette would otherwise
        # reach every label here (dark grey on black).
        self.setPalette(light_palette())
        self.setAutoFillBackground(True)
        self.setObjectName("OperatorScreen")
        self.setFont(cjk_font())
        self.setStyleSheet(STYLE + NAV_STYLE)
        self.ctx = Context(home, status, gate, frames, self, record=record)
        self.ctx.config_saved.connect(self.config_saved)
        self.pages: Dict[str, Page] = {}
        self.buttons: Dict[str, QPushButton] = {}
        self.current: Optional[str] = None
        self._running = False  # whether the current page's on_show has run without an on_hide since

        nav = QVBoxLayout()
        nav.setSpacing(6)
        title = QLabel("运维设置")
        set_role(title, "title")
        nav.addWidget(title)
        classes = self.page_classes(home)
        if len(classes) <= len(PAGE_CLASSES):
            nav.addWidget(hint("运维 Operator · 大白 Dabai"))
            nav.addSpacing(8)
        else:  # a seventh page button takes the subtitle's room: the screen stays within the panel's 600 px
            nav.setSpacing(4)
        group = QButtonGroup(self)
        group.setExclusive(True)
        self.stack = QStackedWidget()
        for cls in classes:
            page = cls(self.ctx)
            self.pages[cls.name] = page
            self.stack.addWidget(page)
            button = QPushButton(cls.title)
            button.setProperty("nav", True)
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, name=cls.name: self.go_to(name))
            group.addButton(button)
            self.buttons[cls.name] = button
            nav.addWidget(button)
        nav.addStretch(1)
        self.exit_button = QPushButton("退出 Exit")
        self.exit_button.setProperty("danger", True)
        self.exit_button.setMinimumHeight(54)
        self.exit_button.clicked.connect(self.leave)
        nav.addWidget(self.exit_button)
        side = QWidget()
        side.setLayout(nav)
        side.setFixedWidth(190)

        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        self.demo_banner = QLabel(
            "演示模式：这里修改的是演示自带的数据（{}），住户、密码和设置都不会进入正式数据。"
            "Demo: you are editing the demo's own data home, not the kiosk's.".format(home.root))
        self.demo_banner.setWordWrap(True)
        self.demo_banner.setObjectName("demo_banner")
        self.demo_banner.setStyleSheet("background: #fff4ce; color: #4d3800; padding: 8px; border: 1px solid #e0c060;")
        self.demo_banner.setVisible(demo)
        right.addWidget(self.demo_banner)
        self.fleet_banner = QLabel()
        self.fleet_banner.setWordWrap(True)
        self.fleet_banner.setObjectName("fleet_banner")
        self.fleet_banner.setStyleSheet(FLEET_BANNER_STYLE)
        self.fleet_banner.hide()
        self.fleet_reason: Optional[str] = None  # the last check's reason (None: in touch or not in a fleet)
        self.fleet_checked = False  # whether a check has answered yet
        self._fleet_checks = OneAtATime()
        self.fleet_timer = QTimer(self)
        self.fleet_timer.setInterval(FLEET_CHECK_MS)
        self.fleet_timer.timeout.connect(self.check_fleet)
        right.addWidget(self.fleet_banner)
        right.addWidget(self.stack, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addWidget(side)
        layout.addLayout(right, 1)

        self.idle_timeout_s = idle_timeout_s
        self.idle = QTimer(self)
        self.idle.setSingleShot(True)
        self.idle.timeout.connect(self.close_screen)
        touch_friendly(self)
        # A touch panel has no keyboard: this one comes up under whichever field the operator taps.
        from kiosk.ui.keyboard import attach_keyboard

        self.keyboard = attach_keyboard(self)
        self.PAGES = tuple(self.pages)  # type: ignore[assignment]
        self._select("residents")

    # pages

    @staticmethod
    def page_classes(home: Home) -> List[type]:
        """The pages of this data home's screen: 各门岗 (before 系统) only where it holds the office's database."""
        classes = list(PAGE_CLASSES)
        if office_database(home).exists():
            classes.insert(classes.index(SystemPage), OfficePage)
        return classes

    def page(self, name: str) -> Page:
        if name not in self.pages:
            raise ValueError("no operator page {!r}; pages: {}".format(name, ", ".join(self.PAGES)))
        return self.pages[name]

    def may_leave_page(self) -> bool:
        """True unless the current page holds unsaved edits and the operator chooses to stay."""
        page = self.pages.get(self.current or "")
        if page is None or not page.unsaved_changes():
            return True
        return confirm(self, "“{}”页有未保存的修改，要放弃吗？".format(page.title.split(" ")[0]), "放弃修改 Drop",
                       "The {} page has unsaved changes. Drop them, or cancel and press Save.".format(
                           page.title.split(" ", 1)[-1]))

    def go_to(self, name: str) -> Optional[Page]:
        """A page button: show ``name`` unless the operator keeps unsaved edits on this one."""
        if name != self.current and not self.may_leave_page():
            self.buttons[self.current].setChecked(True)  # type: ignore[index]
            return None
        return self.show_page(name)

    def leave(self) -> None:
        """The 退出 button (or Esc): back to the resident screen, after asking about unsaved edits."""
        if self.may_leave_page():
            self.close_screen()

    def show_page(self, name: str) -> Page:
        """Show a page (``PAGES``) and start what it runs (a preview, a refresh)."""
        page = self.page(name)
        self._stop_current()
        self._select(name)
        self._running = True
        page.on_show()
        return page

    def _select(self, name: str) -> None:
        self.current = name
        self.stack.setCurrentWidget(self.pages[name])
        self.buttons[name].setChecked(True)

    def _stop_current(self) -> None:
        if self._running and self.current is not None:
            self._running = False
            self.pages[self.current].on_hide()

    # out of touch with the office

    def check_fleet(self) -> None:
        """Whether this kiosk is out of touch with its office, read on a worker thread (one check at a time); the
        banner shows the answer."""
        home, config = self.ctx.home, self.ctx.config.fleet
        self._fleet_checks.run(lambda: fleet_warning(home, config), self._fleet_checked)

    def _fleet_checked(self, reason: Optional[str], error: Optional[BaseException]) -> None:
        if error is not None:  # an unreadable contact file: the banner keeps what it showed
            log.warning("operator: cannot tell whether the office is in touch: %s", error)
            return
        self.show_fleet_warning(reason)

    def show_fleet_warning(self, reason: Optional[str]) -> None:
        self.fleet_checked = True
        self.fleet_reason = reason
        if reason is None:
            self.fleet_banner.hide()
            return
        self.fleet_banner.setText(out_of_touch_text(reason))
        self.fleet_banner.show()

    # leaving

    def close_screen(self) -> None:
        """Stop every page's work, close the database and emit ``closed``."""
        self._stop_current()
        self.idle.stop()
        self.fleet_timer.stop()
        self.ctx.close()
        self.closed.emit()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closed as a window (not through 退出): stop the pages' work and close the database."""
        self._stop_current()
        self.idle.stop()
        self.fleet_timer.stop()
        self.ctx.close()
        super().closeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._touch()
        self.check_fleet()
        self.fleet_timer.start()
        if not self._running and self.current is not None:
            self.show_page(self.current)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt's name
        super().hideEvent(event)
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.idle.stop()
        self.fleet_timer.stop()
        self._stop_current()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() in INPUT_EVENTS:
            self._touch()
        return False

    def _touch(self) -> None:
        if self.idle_timeout_s > 0:
            self.idle.start(int(self.idle_timeout_s * 1000))

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key_Escape:
            self.leave()
            return
        super().keyPressEvent(event)
