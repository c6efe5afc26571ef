"""Pieces every operator page uses: the shared context, background work, and config forms made from
the config dataclasses (so a new key shows up on its page with its documented rule by itself)."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import threading
from html import escape
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from PyQt5.QtCore import QObject, QRunnable, Qt, QThreadPool, pyqtSignal
from PyQt5.QtGui import QFont, QFontDatabase
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.config import (
    SECTIONS,
    Config,
    ConfigError,
    FleetConfig,
    Home,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

# Imported here, on the GUI thread when the screen is made: the worker threads only read files with them.
from kiosk.fleet.broker import OFFICE, FleetError, member_files
from kiosk.fleet.documents import DocumentError, held_versions
from kiosk.fleet.link import bundle_of
from kiosk.ui.operator.texts import zh_doc, zh_label

log = logging.getLogger(__name__)

MAX_TEXT = 256  # no operator text field needs more; longer input is refused, not cut
OPERATOR_OUTCOME = "operator"  # access-log outcome of an operator's action (Context.record)

# Every control is at least TOUCH_PX (9 mm on the 7-inch panel) in both directions: min-height is the content
# height, so it leaves room for the padding and border.
STYLE = """
QWidget { font-size: 16px; }
QPushButton { min-height: 50px; min-width: 44px; padding: 4px 14px; border-radius: 6px; background: #e8eef5;
              border: 1px solid #b8c4d2; }
QPushButton:pressed { background: #c9d7e6; }
QPushButton:disabled { color: #8a939c; background: #f1f3f5; }
QPushButton[accent="true"] { background: #1f6feb; color: white; border: 1px solid #1a5fcc; }
QPushButton[danger="true"] { background: #fbe9e9; border: 1px solid #d99; color: #a01818; }
QPushButton[accent="true"]:disabled, QPushButton[danger="true"]:disabled { color: #8a939c; background: #f1f3f5;
                                                                          border: 1px solid #d5dbe1; }
QLineEdit, QComboBox, QDateEdit { min-height: 58px; padding: 0 8px; }
QComboBox QAbstractItemView::item { min-height: 56px; }
QCheckBox { min-height: 60px; min-width: 60px; }
QCheckBox::indicator { width: 34px; height: 34px; }
QListWidget::item { min-height: 56px; }
QScrollBar:vertical { width: 22px; }
QLabel[role="hint"] { color: #5a636d; font-size: 13px; }
QLabel[role="error"] { color: #c01c1c; font-size: 13px; }
QLabel[role="ok"] { color: #1a7f37; font-size: 13px; }
QLabel[role="title"] { font-size: 22px; font-weight: bold; }
QLabel[role="section"] { font-size: 17px; font-weight: bold; margin-top: 6px; }
"""


def cjk_font(point_size: int = 11) -> QFont:
    """A font with Chinese glyphs (fonts-noto-cjk), else Qt's default with its own fallback."""
    from kiosk.ui.fonts import choose_family

    family = choose_family(QFontDatabase().families())
    return QFont(family, point_size) if family else QFont()


# ---- messages ------------------------------------------------------------------------------


_ZH_RULES = (
    (re.compile(r"must be between (\S+) and (\S+)"), "须在 {0} 到 {1} 之间"),
    (re.compile(r"must not exceed ([\w.]+) \((\S+)\)"), "不能大于 {0}（{1}）"),
    (re.compile(r"must be a whole number"), "须为整数"),
    (re.compile(r"must be a number"), "须为数字"),
    (re.compile(r"must be true or false"), "须为是或否"),
    (re.compile(r"must be one of (.+)"), "须为以下之一：{0}"),
    (re.compile(r"must not be empty"), "不能为空"),
    (re.compile(r"is (\d+) characters long; at most (\d+)"), "太长（{0} 个字符，最多 {1} 个）"),
    (re.compile(r"control characters"), "不能含控制字符"),
    (re.compile(r"does not exist|not found|no such|cannot be found", re.I), "不存在"),
)


def explain(problem: str) -> str:
    """A problem in Chinese first, then the English original: ``须在 50 到 10000 之间 · gate.pulse_ms = -5: …``."""
    for pattern, zh in _ZH_RULES:
        m = pattern.search(problem)
        if m:
            return "{} · {}".format(zh.format(*m.groups()), problem)
    return problem


def problem_key(problem: str) -> Optional[str]:
    """``section.key`` a config problem is about (``gate.pulse_ms = -5: …`` → ``gate.pulse_ms``)."""
    m = re.match(r"\[?(\w+)\.(\w+)", problem)
    return "{}.{}".format(m.group(1), m.group(2)) if m else None


def set_role(label: QLabel, role: str) -> None:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)


class Note(QLabel):
    """A one-line status under a form: green when done, red when refused, grey while working."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        set_role(self, "hint")

    def ok(self, text: str) -> None:
        self.setText(text)
        set_role(self, "ok")

    def error(self, text: str) -> None:
        self.setText(text)
        set_role(self, "error")

    def busy(self, text: str) -> None:
        self.setText(text)
        set_role(self, "hint")

    @property
    def is_error(self) -> bool:
        return self.property("role") == "error"


def confirm(parent: Optional[QWidget], question: str, action: str, detail: str = "") -> bool:
    """Ask before a destructive or disruptive action: ``question`` names what it affects, ``action`` is the
    confirming button's text (e.g. 注销 Revoke). Cancel is the default button; True only when confirmed."""
    box = QMessageBox(parent)
    box.setWindowTitle("请确认 Please confirm")
    box.setIcon(QMessageBox.Warning)
    box.setText(question)
    if detail:
        box.setInformativeText(detail)
    yes = box.addButton(action, QMessageBox.DestructiveRole)
    no = box.addButton("取消 Cancel", QMessageBox.RejectRole)
    for button in (yes, no):
        button.setMinimumSize(140, 54)
    box.setDefaultButton(no)
    box.setEscapeButton(no)
    box.setObjectName("confirm")
    box.exec_()
    give_focus_back(parent)
    return box.clickedButton() is yes


def give_focus_back(parent: Optional[QWidget]) -> None:
    """Make the screen under a dialog that just closed the active window again. A kiosk's X server often runs
    without a window manager, which would do it: without it no field has the focus, so taps on fields do not
    bring the on-screen keyboard up and keys go nowhere."""
    if parent is not None:
        parent.window().activateWindow()


# ---- what the property office keeps -----------------------------------------------------------

OFFICE_KINDS = ("policy", "registry")  # the office's documents that replace what a page here would edit
OFFICE_NOTE_STYLE = ("background: #e8f1fd; color: #0b3d91; font-size: 15px; padding: 6px 10px; "
                     "border: 1px solid #8fb5ea; border-radius: 6px;")  # the text 9:1 on its background


def office_versions(home: Home, config: FleetConfig) -> Dict[str, int]:
    """The versions of the property office's documents this kiosk of a fleet holds, ``{"policy": 3, "registry": 12}``
    (only those above 0): its ``[policy]``, or its residents and passes, are then the office's, and what is changed
    here is overwritten at the office's next change. Empty for a kiosk on its own, for the office's own machine (it
    writes them), and when the versions file is unreadable (logged). It reads files: run it off the GUI thread."""
    bundle = bundle_of(home, config)
    if bundle is None:
        return {}
    try:
        if member_files(bundle)[0] == OFFICE:
            return {}
    except FleetError:
        pass  # a broken bundle: still a kiosk of the fleet, holding what the office sent it before
    try:
        held = held_versions(home)
    except DocumentError as exc:
        log.warning("operator: cannot tell what the office keeps: %s", exc)
        return {}
    return {kind: held[kind] for kind in OFFICE_KINDS
            if type(held.get(kind)) is int and held[kind] > 0}


def office_note_label() -> QLabel:
    """The note at the top of a page whose data the property office keeps; hidden until :func:`show_office_note`."""
    label = QLabel()
    label.setObjectName("office_note")
    label.setWordWrap(True)
    label.setTextFormat(Qt.RichText)
    label.setStyleSheet(OFFICE_NOTE_STYLE)
    label.hide()
    return label


def show_office_note(label: QLabel, note: Optional[Tuple[str, str]]) -> None:
    """Show ``(Chinese, English)`` in an :func:`office_note_label`, the English smaller under it; None hides it."""
    if note is None:
        label.clear()
        label.hide()
        return
    zh, en = note
    label.setText("<b>{}</b><br><span style='font-size:12px'>{}</span>".format(escape(zh), escape(en)))
    label.show()


def hint(text: str, parent: Optional[QWidget] = None) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    set_role(label, "hint")
    return label


def heading(text: str, role: str = "section") -> QLabel:
    label = QLabel(text)
    set_role(label, role)
    return label


MEDIA_ROOTS = (Path("/media"), Path("/run/media"))  # where desktop sessions mount USB sticks: ROOT/USER/LABEL


def removable_media(roots: Optional[Sequence[Path]] = None) -> List[Path]:
    """The mounted USB sticks (``/media/USER/LABEL``, ``/run/media/USER/LABEL``) that can be written."""
    found: List[Path] = []
    for base in MEDIA_ROOTS if roots is None else roots:
        try:
            found += [p for user in sorted(base.iterdir()) if user.is_dir() for p in sorted(user.iterdir())
                      if p.is_dir() and os.access(str(p), os.W_OK)]
        except OSError:
            continue
    return found


def export_places(home_root: Path, configured: str = "", roots: Optional[Sequence[Path]] = None) -> List[Tuple[str, Path]]:
    """(label, folder) the operator may save files to, USB sticks first: nowhere else on the device."""
    places = [("U 盘 USB stick: {}".format(p.name), p) for p in removable_media(roots)]
    if configured.strip():
        places.append(("导出文件夹 Export folder: {}".format(configured.strip()), Path(configured.strip()).expanduser()))
    places.append(("本机导出文件夹 This kiosk's export folder", home_root / "exports"))
    return places


_BAD_NAME = re.compile(r"[/\\\x00-\x1f]|^\.")


class ExportDialog(QDialog):
    """Save a file onto a USB stick or into the export folder, and nowhere else (a file dialog would let the
    operator browse the whole device, as root on some installs). A list of places and a file name, in Chinese."""

    def __init__(self, parent: Optional[QWidget], title: str, places: Sequence[Tuple[str, Path]], file_name: str) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("export")
        self.suffix = Path(file_name).suffix
        self.places = list(places)
        self.list = QListWidget()
        for label, folder in self.places:
            self.list.addItem(QListWidgetItem("{}\n{}".format(label, folder)))
        self.list.setCurrentRow(0)
        self.name = QLineEdit(file_name)
        self.error = QLabel()
        set_role(self.error, "error")
        self.error.setWordWrap(True)
        save = QPushButton("保存 Save")
        save.setProperty("accent", True)
        save.clicked.connect(self._save)
        cancel = QPushButton("取消 Cancel")
        cancel.clicked.connect(self.reject)
        self.save_button, self.cancel_button = save, cancel
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(save)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("保存到 Save to"))
        layout.addWidget(hint("插入 U 盘后会出现在列表最上方 A USB stick appears at the top of the list once plugged in."))
        layout.addWidget(self.list, 1)
        layout.addWidget(heading("文件名 File name"))
        layout.addWidget(self.name)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.resize(560, 420)
        self.path: Optional[Path] = None
        touch_friendly(self)
        from kiosk.ui.keyboard import attach_keyboard

        self.keyboard = attach_keyboard(self, default_layout="latin")  # file names: letters and digits

    def _save(self) -> None:
        name = self.name.text().strip()
        if not name or _BAD_NAME.search(name) or ".." in name:
            self.error.setText("文件名不能为空，也不能含 / 或 \\ Enter a plain file name")
            return
        if self.suffix and not name.lower().endswith(self.suffix.lower()):
            name += self.suffix
        row = self.list.currentRow()
        if row < 0:
            self.error.setText("请选择保存位置 Choose where to save")
            return
        path = self.places[row][1] / name
        question = "{} 已存在，要替换它吗？ {} exists: replace it?".format(name, name)
        if path.exists() and not confirm(self, question, "替换 Replace"):
            return
        self.path = path
        self.accept()


def choose_export_path(parent: Optional[QWidget], ctx: "Context", title: str, file_name: str) -> Optional[Path]:
    """Ask where to save ``file_name`` (:class:`ExportDialog`); None when the operator cancels."""
    dialog = ExportDialog(parent, title, export_places(ctx.home.root, ctx.config.community.export_dir), file_name)
    accepted = dialog.exec_() == QDialog.Accepted
    give_focus_back(parent)
    return dialog.path if accepted else None


def scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.NoFrame)
    area.setWidget(widget)
    return area


def touch_friendly(root: QWidget) -> None:
    """Finger-sized rows and finger-drag (kinetic) scrolling for every list, table and scrolling panel under
    ``root``: a touch panel sends mouse presses, so the scroller follows a dragging left button."""
    from PyQt5.QtWidgets import QAbstractItemView, QAbstractScrollArea, QScroller, QScrollerProperties, QTableView

    from kiosk.ui.theme import TOUCH_PX

    for area in root.findChildren(QAbstractScrollArea):
        if isinstance(area, QAbstractItemView):
            area.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
            area.setHorizontalScrollMode(QAbstractItemView.ScrollPerPixel)
            if isinstance(area, QTableView):
                area.verticalHeader().setDefaultSectionSize(TOUCH_PX)
                area.verticalHeader().setMinimumSectionSize(TOUCH_PX)
        QScroller.grabGesture(area.viewport(), QScroller.LeftMouseButtonGesture)
        scroller = QScroller.scroller(area.viewport())
        properties = scroller.scrollerProperties()
        # Qt holds a press back (0.25 s) to see whether it becomes a drag; a quick tap on a button in the panel
        # was lost that way. The press goes through at once; a drag still scrolls.
        properties.setScrollMetric(QScrollerProperties.MousePressEventDelay, 0.0)
        for policy in (QScrollerProperties.HorizontalOvershootPolicy, QScrollerProperties.VerticalOvershootPolicy):
            properties.setScrollMetric(policy, QScrollerProperties.OvershootAlwaysOff)
        scroller.setScrollerProperties(properties)


# ---- work off the GUI thread ---------------------------------------------------------------


class _Relay(QObject):
    done = pyqtSignal(object, object)  # result, exception


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay

    def run(self) -> None:
        try:
            result, error = self.fn(), None
        except Exception as exc:  # handed to the GUI thread, which shows it
            result, error = None, exc
        try:
            self.relay.done.emit(result, error)
        except RuntimeError:  # the application is shutting down: nobody is left to tell
            pass


_alive: Set[_Relay] = set()


def _deliver(callback: Callable[[Any, Optional[BaseException]], None], result: Any, error: Any) -> None:
    try:
        callback(result, error)
    except RuntimeError as exc:  # the page was closed while the work ran: nothing to show it on
        if "deleted" not in str(exc):
            raise
        log.debug("background result dropped: %s", exc)


def run_in_background(fn: Callable[[], Any], done: Callable[[Any, Optional[BaseException]], None]) -> None:
    """Run ``fn`` on Qt's thread pool and call ``done(result, error)`` on the GUI thread."""
    relay = _Relay()
    _alive.add(relay)

    def finish(result: Any, error: Any) -> None:
        _alive.discard(relay)
        _deliver(done, result, error)

    relay.done.connect(finish)
    QThreadPool.globalInstance().start(_Task(fn, relay))


class OneAtATime:
    """Background reads of one kind, one at a time: asked again while a read still runs (a timer's next turn, a page
    shown twice), it does nothing, so a slow disk never piles reads up."""

    def __init__(self) -> None:
        self.busy = False

    def run(self, fn: Callable[[], Any], done: Callable[[Any, Optional[BaseException]], None]) -> None:
        """:func:`run_in_background`, unless a read started here has not answered yet."""
        if self.busy:
            return
        self.busy = True

        def finish(result: Any, error: Optional[BaseException]) -> None:
            self.busy = False
            done(result, error)

        run_in_background(fn, finish)


class Stream(QObject):
    """A long-running producer on its own thread (a camera preview, a level meter).

    ``produce(stop, emit)`` runs until ``stop`` is set, calling ``emit(item)``; items arrive on the GUI
    thread through ``item``; an exception arrives as text through ``failed``."""

    item = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, produce: Callable[[threading.Event, Callable[[Any], None]], None],
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._produce = produce
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="operator-stream", daemon=True)
        self._thread.start()

    def _emit(self, value: Any) -> None:
        if self._stop.is_set():
            return
        try:
            self.item.emit(value)
        except RuntimeError:  # the page went away without stopping us: stop quietly
            self._stop.set()

    def _run(self) -> None:
        try:
            self._produce(self._stop, self._emit)
        except Exception as exc:  # shown next to the device it came from
            if not self._stop.is_set():
                try:
                    self.failed.emit(str(exc) or type(exc).__name__)
                except RuntimeError:
                    pass

    def stop(self, wait_s: float = 0.0) -> None:
        """Ask the producer to stop; ``wait_s`` > 0 waits that long for it (tests)."""
        self._stop.set()
        if wait_s > 0 and self._thread is not None:
            self._thread.join(wait_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()


# ---- the context every page shares -----------------------------------------------------------


class Context(QObject):
    """The data home, its config and store, the app's live status, and saving."""

    config_saved = pyqtSignal(object)

    def __init__(self, home: Home, status: Callable[[], Dict[str, Any]], gate: Any = None,
                 frames: Optional[Callable[[], Any]] = None, parent: Optional[QObject] = None,
                 record: Optional[Callable[[Any], Any]] = None) -> None:
        super().__init__(parent)
        self.home = home
        self._status = status
        self._record = record  # the app's access log (a Decision → durable record); None: the Python log only
        self.gate = gate  # the app's own gate driver, when it lends it (the test button then pulses the real one)
        self.frames = frames  # the app's newest camera frame, when it lends it (its camera is busy otherwise)
        self.load_problem: Optional[str] = None
        self.config = self._load()
        self._store: Any = None

    def _load(self) -> Config:
        try:
            self.load_problem = None
            return load_config(self.home.config)
        except ConfigError as exc:
            self.load_problem = str(exc)
            return Config()

    @property
    def store(self) -> Any:
        if self._store is None:
            from kiosk.runtime.assemble import open_store

            self._store = open_store(self.home)
        return self._store

    def record(self, action: str, detail: str = "", resident_id: Optional[int] = None,
               resident_name: Optional[str] = None, pass_serial: Optional[int] = None, gate_opened: bool = False) -> bool:
        """Write an operator action into the access log, beside the gate's decisions (outcome ``operator``,
        reason ``action`` or ``action: detail``). False when it could not be made durable (it is logged anyway)."""
        from kiosk.core.events import Decision

        reason = "{}: {}".format(action, detail) if detail else action
        log.info("operator action: %s%s", reason, "" if resident_id is None else " (resident {})".format(resident_id))
        if self._record is None:
            return False
        try:
            return self._record(Decision(OPERATOR_OUTCOME, reason, resident_id=resident_id, resident_name=resident_name,
                                         pass_serial=pass_serial, gate_opened=gate_opened)) is not None
        except Exception as exc:  # the log's own refusal is reported there; the screen goes on
            log.warning("operator action not recorded: %s", exc)
            return False

    def status(self) -> Dict[str, Any]:
        """The app's live figures; an empty dict when it has none or fails."""
        try:
            found = self._status()
        except Exception as exc:  # the status callable is the app's; never let it break the screen
            log.warning("operator: status() failed: %s", exc)
            return {}
        return found if isinstance(found, dict) else {}

    def check(self, changes: Dict[str, Dict[str, Any]]) -> Tuple[Optional[Config], List[str]]:
        """The config on disk with ``{section: {key: value}}`` applied and validated, or its problems."""
        base = self._load() if self.load_problem is None else self.config
        data = config_to_dict(base)
        for section, values in changes.items():
            if section not in data:
                return None, ["[{}]: unknown section".format(section)]
            data[section].update(values)
        try:
            return config_from_dict(data, "<operator>"), []
        except ConfigError as exc:
            return None, list(exc.problems)

    def save(self, changes: Dict[str, Dict[str, Any]]) -> List[str]:
        """Validate the changes, save the config atomically and announce it (``config_saved``).

        Returns the problems (nothing is saved then), or an empty list."""
        new, problems = self.check(changes)
        if new is None:
            return problems
        try:
            save_config(new, self.home.config)
        except OSError as exc:
            return ["cannot save {}: {}".format(self.home.config, exc)]
        self.config = new
        self.load_problem = None
        self.config_saved.emit(new)
        return []

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


# ---- config forms ----------------------------------------------------------------------------


def _parse(kind: type, text: str) -> Any:
    """Text → the field's type where it reads as one; otherwise the text itself, which validation refuses."""
    text = text.strip()
    if kind is int and re.fullmatch(r"[+-]?\d{1,12}", text):
        return int(text)
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else text  # nan would slip through every range check
    return text


def rule_text(f: "dataclasses.Field[Any]") -> str:
    meta = f.metadata
    if "choices" in meta:
        return ""
    if "min" in meta:
        return "{} … {}".format(meta["min"], meta["max"])
    return ""


class ConfigForm(QWidget):
    """One row per field of a config section: Chinese label and key, input, documented rule, error.

    ``keys`` picks and orders fields (default: all); ``labels`` gives Chinese names (default: the key)."""

    changed = pyqtSignal()

    def __init__(self, section: str, keys: Optional[Sequence[str]] = None, labels: Optional[Dict[str, str]] = None,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.section = section
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
        self.fields = [fields[k] for k in (keys if keys is not None else list(fields))]
        labels = labels or {}
        self.inputs: Dict[str, QWidget] = {}
        self.errors: Dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(2, 1)
        grid.setColumnMinimumWidth(0, 230)  # forms stacked on one page line up
        grid.setColumnMinimumWidth(1, 240)
        for row, f in enumerate(self.fields):
            name = QLabel("<b>{}</b>".format(labels.get(f.name) or zh_label(section, f.name) or f.name))
            name.setWordWrap(True)
            name.setToolTip("{}.{}".format(section, f.name))  # for whoever edits config.toml by hand
            widget = self._make_input(f)
            self.inputs[f.name] = widget
            error = QLabel()
            error.setWordWrap(True)
            set_role(error, "error")
            error.hide()
            self.errors[f.name] = error
            doc = f.metadata.get("doc", "")
            rule = rule_text(f)
            zh = zh_doc(section, f.name)
            about = hint("{}{}{}".format(zh or doc, "（{}）".format(rule) if rule else "",
                                         "<br><span style='font-size:12px'>{}</span>".format(escape(doc)) if zh else ""))
            about.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
            right = QVBoxLayout()
            right.setSpacing(0)
            right.addWidget(about)
            right.addWidget(error)
            grid.addWidget(name, row, 0, Qt.AlignTop)
            grid.addWidget(widget, row, 1, Qt.AlignTop)
            grid.addLayout(right, row, 2)

    def _make_input(self, f: "dataclasses.Field[Any]") -> QWidget:
        kind = type(f.default)
        if kind is bool:
            box = QCheckBox()
            box.toggled.connect(self.changed)
            return box
        if "choices" in f.metadata:
            combo = QComboBox()
            combo.addItems(list(f.metadata["choices"]))
            combo.currentIndexChanged.connect(self.changed)
            return combo
        edit = QLineEdit()
        edit.setMinimumWidth(200)
        edit.setMaximumWidth(320)
        if kind in (int, float):
            edit.setProperty("keyboard", "digits")  # the on-screen keyboard opens on its number pad
        rule = rule_text(f)
        if rule:
            edit.setPlaceholderText(rule)
        edit.textEdited.connect(self.changed)
        return edit

    def load(self, config: Config) -> None:
        section = getattr(config, self.section)
        for f in self.fields:
            self.set_value(f.name, getattr(section, f.name))
        self.clear_problems()
        self._loaded = self.values()

    def mark_saved(self) -> None:
        """What the form holds now is what is saved."""
        self._loaded = self.values()

    def modified(self) -> bool:
        """Whether the form holds edits that were neither saved nor reverted."""
        return self.values() != getattr(self, "_loaded", self.values())

    def set_value(self, key: str, value: Any) -> None:
        widget = self.inputs[key]
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            index = widget.findText(str(value))
            widget.setCurrentIndex(max(0, index))
        elif isinstance(widget, QLineEdit):
            widget.setText(str(value))

    def text(self, key: str) -> str:
        widget = self.inputs[key]
        if isinstance(widget, QComboBox):
            return widget.currentText()
        if isinstance(widget, QLineEdit):
            return widget.text()
        return str(self.values()[key])

    def values(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in self.fields:
            widget = self.inputs[f.name]
            if isinstance(widget, QCheckBox):
                out[f.name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                out[f.name] = widget.currentText()
            else:
                out[f.name] = _parse(type(f.default), widget.text())  # type: ignore[attr-defined]
        return out

    def text_problems(self) -> List[str]:
        """Problems of free text that the config itself does not check: length and control characters."""
        problems = []
        for f in self.fields:
            widget = self.inputs[f.name]
            if isinstance(widget, QLineEdit) and type(f.default) is str:
                text = widget.text()
                key = "{}.{}".format(self.section, f.name)
                if len(text) > MAX_TEXT:
                    problems.append("{} is {} characters long; at most {} are allowed".format(key, len(text), MAX_TEXT))
                elif any(ord(c) < 32 for c in text):
                    problems.append("{} must not contain control characters".format(key))
        return problems

    def clear_problems(self) -> None:
        for error in self.errors.values():
            error.clear()
            error.hide()

    def show_problems(self, problems: Sequence[str]) -> List[str]:
        """Show each problem next to its field; returns those that belong to no field of this form."""
        rest = []
        for problem in problems:
            key = problem_key(problem)
            section, _, name = (key or "").partition(".")
            if section == self.section and name in self.errors:
                self.set_error(name, problem)
            else:
                rest.append(problem)
        return rest

    def set_error(self, key: str, problem: str) -> None:
        label = self.errors[key]
        text = explain(problem)
        label.setText(text if not label.text() else label.text() + "\n" + text)
        label.show()

    def error_text(self, key: str) -> str:
        return self.errors[key].text()


def save_forms(ctx: Context, forms: Sequence[ConfigForm], extra: Sequence[str] = (), note: Optional[Note] = None) -> bool:
    """Validate the forms together (plus ``extra`` problems a page found itself) and save them in one write.

    Every problem is shown next to its field; nothing is saved unless there are none."""
    for form in forms:
        form.clear_problems()
    problems = list(extra)
    changes: Dict[str, Dict[str, Any]] = {}
    for form in forms:
        problems += form.text_problems()
        changes.setdefault(form.section, {}).update(form.values())
    problems += ctx.check(changes)[1]
    if not problems:
        problems = ctx.save(changes)
    if not problems:
        for form in forms:
            form.mark_saved()
        ctx.record("settings_saved", ", ".join(sorted(changes)))
    rest = list(problems)
    for form in forms:
        rest = form.show_problems(rest)
    if note is not None:
        if problems:
            note.error("未保存 Not saved: {} 处错误 problem(s){}".format(
                len(problems), "".join("\n" + explain(p) for p in rest)))
        else:
            note.ok("已保存并生效 Saved and applied ({})".format(ctx.home.config.name))
    return not problems


class Page(QWidget):
    """One page of the operator screen; ``on_show``/``on_hide`` start and stop what it runs."""

    name = ""
    title = ""

    def __init__(self, ctx: Context, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def lay_out(self, body: QWidget, note: QWidget, *buttons: QWidget) -> None:
        """The page of a form: ``body`` scrolls; ``note`` and ``buttons`` (Save …) stay at the bottom."""
        bar = QHBoxLayout()
        bar.addWidget(note, 1)
        for button in buttons:
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(scrolling(body), 1)
        layout.addLayout(bar)

    def on_show(self) -> None:
        """Called when the page becomes visible."""

    def unsaved_changes(self) -> bool:
        """Whether leaving the page would drop edits (the screen asks first); a config form's by default."""
        return any(form.modified() for form in self.findChildren(ConfigForm))

    def on_hide(self) -> None:
        """Called when another page is shown or the screen closes."""
