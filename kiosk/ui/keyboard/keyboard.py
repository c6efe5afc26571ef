"""The on-screen keyboard of the 1024x600 touch panel (the gate has no physical keyboard).

``OnScreenKeyboard`` is a QWidget with three layouts:

* ``"pinyin"`` — QWERTY letters; typed letters go to a composition line, a candidate bar above the keys offers
  characters and words (:mod:`kiosk.ui.keyboard.pinyin`); a tap on a candidate types it into the field.
* ``"latin"`` — the same keys typing latin letters (⇧: once, twice = caps lock, a third tap = off).
* ``"digits"`` — a keypad: 0-9, ``-``, ``.``, backspace, enter.

Keys type the way a hardware keyboard does: each tap sends a ``QKeyEvent`` press and release with its text to
``QApplication.focusWidget()``, so ``QLineEdit.textEdited``, validators and ``maxLength`` work as usual. Keys
never take focus (``Qt.NoFocus``), so the field keeps it.

``attach_keyboard(window)`` (a :class:`KeyboardDock`) shows the keyboard at the bottom of ``window`` whenever a
text field inside it gets focus, and hides it when focus moves to anything else or the hide key is tapped. The
window's contents make room above it, so the field being edited stays visible.
A field picks its layout with the dynamic property ``keyboard`` (``"digits"``, ``"pinyin"``, ``"latin"``);
without it, fields with a QIntValidator/QDoubleValidator, password fields and spin boxes get digits, all others
the dock's default (pinyin)::

    self.pin_edit.setProperty("keyboard", "digits")
    self.keyboard = attach_keyboard(self)     # in a page's __init__
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from PyQt5.QtCore import QEvent, QObject, QPoint, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QDoubleValidator, QFont, QFontDatabase, QFontMetrics, QIntValidator, QKeyEvent
from PyQt5.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.ui.keyboard.pinyin import Candidate, PinyinEngine, default_engine

LAYOUTS = ("pinyin", "latin", "digits")
# Touch targets: 9 mm on the 7-inch 1024x600 panel (about 6.6 px a millimetre) is 60 px.
KEY_SIZE = 60
SPACING = 5
MAX_COMPOSITION = 40  # letters; more are ignored (the engine looks up no longer input)

# Fixed colours, not the desktop palette (dark text on light keys; every pair's contrast is at least 4.5:1,
# tests/test_keyboard.py checks it).
COLORS = {
    "background": "#c9ced6",  # the keyboard behind the keys
    "key": "#ffffff",
    "key_text": "#111111",
    "function": "#aab2bd",  # shift, backspace, 123, 中/EN, hide
    "function_text": "#111111",
    "accent": "#0b57d0",  # enter, and shift while it is on
    "accent_text": "#ffffff",
    "pressed": "#8fa9c9",
    "bar": "#f4f5f7",  # the candidate bar
    "candidate_text": "#111111",
    "composition_text": "#0b3d91",
}
STYLE = """
OnScreenKeyboard {{ background: {background}; }}
QWidget#candidateBar {{ background: {bar}; border-radius: 6px; }}
QPushButton {{ background: {key}; color: {key_text}; border: 1px solid #7d8793; border-radius: 7px;
              font-size: 26px; min-height: {size}px; min-width: {size}px; padding: 0px; margin: 0px; }}
QPushButton:pressed {{ background: {pressed}; }}
QPushButton:disabled {{ color: #5f6873; background: {bar}; }}
QPushButton[role="function"] {{ background: {function}; color: {function_text}; font-size: 21px; }}
QPushButton[role="accent"], QPushButton[active="true"] {{ background: {accent}; color: {accent_text}; font-size: 21px; }}
QPushButton[role="candidate"] {{ background: {bar}; color: {candidate_text}; border: none; font-size: 27px;
                                padding: 0px 10px; }}
QPushButton[role="candidate"]:pressed {{ background: {pressed}; }}
QPushButton[role="function"]:disabled {{ background: {bar}; color: #5f6873; border-color: #b4bcc6; }}
QLabel#composition {{ color: {composition_text}; font-size: 22px; padding: 0px 8px; }}
""".format(size=KEY_SIZE, **COLORS)

LETTER_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
DIGIT_ROWS = (("1", "2", "3", "backspace"), ("4", "5", "6", "-"), ("7", "8", "9", "."), ("letters", "0", "hide", "enter"))
LABELS = {
    "backspace": "⌫", "enter": "确定", "space": "空格", "shift": "⇧", "lang": "中/EN", "digits": "123",
    "hide": "隐藏", "prev": "◀", "next": "▶", "-": "-", ".": ".",
}
# Qt key codes of the keys that are not letters or digits (what a hardware keyboard sends).
KEY_CODES = {" ": Qt.Key_Space, "-": Qt.Key_Minus, ".": Qt.Key_Period}


def cjk_family() -> Optional[str]:
    """The CJK font family the app uses (kiosk.ui.fonts), or None."""
    from kiosk.ui.fonts import choose_family

    return choose_family(QFontDatabase().families())


class OnScreenKeyboard(QWidget):
    """The keyboard. ``layout_name`` is ``"pinyin"``, ``"latin"`` or ``"digits"``; ``key(name)`` is a key's
    button (``"a"``, ``"7"``, ``"-"``, ``"."``, ``"space"``, ``"backspace"``, ``"enter"``, ``"shift"``, ``"lang"``,
    ``"digits"``, ``"letters"``, ``"hide"``, ``"prev"``, ``"next"``); ``candidate_buttons()`` the candidates shown."""

    layout_changed = pyqtSignal(str)
    visibility_changed = pyqtSignal(bool)
    composition_changed = pyqtSignal(str)

    def __init__(self, parent: Optional[QWidget] = None, engine: Optional[PinyinEngine] = None,
                 layout: str = "pinyin") -> None:
        super().__init__(parent)
        if layout not in LAYOUTS:
            raise ValueError("keyboard layout must be one of {}, not {!r}".format(", ".join(LAYOUTS), layout))
        self.engine = engine if engine is not None else default_engine()
        self.target: Optional[QWidget] = None  # the field typed into when no widget has focus (set by the dock)
        self._layout = layout
        self._letters_layout = layout if layout != "digits" else "pinyin"  # where "letters" goes back to
        self._composition = ""
        self._candidates: List[Candidate] = []
        self._page_starts: List[int] = [0]  # first candidate of each page seen so far (for ◀)
        self._shift = 0  # 0 off, 1 the next letter, 2 caps lock

        self.setObjectName("OnScreenKeyboard")
        self.setFocusPolicy(Qt.NoFocus)
        self.setAttribute(Qt.WA_StyledBackground, True)  # so the stylesheet paints the background
        family = cjk_family()
        if family:
            self.setFont(QFont(family))
        self.setStyleSheet(STYLE)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)

        self._keys: Dict[str, Dict[str, QPushButton]] = {"letters": {}, "digits": {}, "bar": {}}
        root = QVBoxLayout(self)
        root.setContentsMargins(SPACING, SPACING, SPACING, SPACING)
        root.setSpacing(SPACING)
        self.bar = self._build_bar()
        self.letters_page = self._build_letters()
        self.digits_page = self._build_digits()
        root.addWidget(self.bar)
        root.addWidget(self.letters_page)
        root.addWidget(self.digits_page)
        self.set_layout(layout)

    # ---- building -------------------------------------------------------------------------------

    def _button(self, page: str, name: str, label: str, role: str = "key") -> QPushButton:
        button = QPushButton(label)
        button.setFocusPolicy(Qt.NoFocus)  # the field keeps focus
        button.setProperty("role", role)
        button.setProperty("key", name)
        button.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        button.setMinimumSize(KEY_SIZE, KEY_SIZE)
        button.setFixedHeight(KEY_SIZE)
        if name == "backspace":
            button.setAutoRepeat(True)  # hold to delete more
            button.setAutoRepeatDelay(450)
            button.setAutoRepeatInterval(90)
        button.clicked.connect(lambda _=False, key=name: self.press(key))
        self._keys[page][name] = button
        return button

    def _row(self, page: str, keys: Sequence[Tuple[str, str, str, int]]) -> QHBoxLayout:
        """A row of (name, label, role, stretch) keys; stretch is the key's width in key units."""
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(SPACING)
        for name, label, role, stretch in keys:
            row.addWidget(self._button(page, name, label, role), stretch)
        return row

    def _build_bar(self) -> QWidget:
        """The candidate bar: the composition (letters typed so far), the candidates of one page, ◀ ▶."""
        bar = QWidget()
        bar.setObjectName("candidateBar")
        bar.setAttribute(Qt.WA_StyledBackground, True)
        bar.setFixedHeight(KEY_SIZE)
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.composition_label = QLabel()
        self.composition_label.setObjectName("composition")
        self.composition_label.setMinimumWidth(40)
        self.composition_label.setMaximumWidth(230)
        layout.addWidget(self.composition_label)
        self.candidate_area = QWidget()
        self.candidate_area.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self._candidate_layout = QHBoxLayout(self.candidate_area)
        self._candidate_layout.setContentsMargins(0, 0, 0, 0)
        self._candidate_layout.setSpacing(2)
        self._candidate_buttons: List[QPushButton] = []
        for index in range(12):  # a pool: a page shows as many as fit
            button = QPushButton()
            button.setFocusPolicy(Qt.NoFocus)
            button.setProperty("role", "candidate")
            button.setFixedHeight(KEY_SIZE)
            button.setMinimumWidth(KEY_SIZE)
            button.clicked.connect(lambda _=False, i=index: self._choose_shown(i))
            button.hide()
            self._candidate_layout.addWidget(button)
            self._candidate_buttons.append(button)
        self._candidate_layout.addStretch(1)
        layout.addWidget(self.candidate_area, 1)
        for name in ("prev", "next"):
            button = self._button("bar", name, LABELS[name], "function")
            button.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
            button.setFixedWidth(KEY_SIZE + 8)
            layout.addWidget(button)
        return bar

    def _build_letters(self) -> QWidget:
        page = QWidget()
        rows = QVBoxLayout(page)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(SPACING)
        rows.addLayout(self._row("letters", [(c, c, "key", 2) for c in LETTER_ROWS[0]]))
        second = self._row("letters", [(c, c, "key", 2) for c in LETTER_ROWS[1]])
        second.insertStretch(0, 1)  # half a key in, like a real keyboard
        second.addStretch(1)
        rows.addLayout(second)
        rows.addLayout(self._row("letters", [("shift", LABELS["shift"], "function", 3)]
                                 + [(c, c, "key", 2) for c in LETTER_ROWS[2]]
                                 + [("backspace", LABELS["backspace"], "function", 3)]))
        rows.addLayout(self._row("letters", [
            ("digits", LABELS["digits"], "function", 2), ("lang", LABELS["lang"], "function", 2),
            ("-", "-", "key", 2), ("space", LABELS["space"], "key", 6), (".", ".", "key", 2),
            ("hide", LABELS["hide"], "function", 2), ("enter", LABELS["enter"], "accent", 3)]))
        return page

    def _build_digits(self) -> QWidget:
        page = QWidget()
        rows = QVBoxLayout(page)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(SPACING)
        for names in DIGIT_ROWS:
            keys = []
            for name in names:
                role = "accent" if name == "enter" else ("key" if len(name) == 1 else "function")
                keys.append((name, LABELS.get(name, name), role, 1))
            rows.addLayout(self._row("digits", keys))
        return page

    # ---- state ----------------------------------------------------------------------------------

    @property
    def layout_name(self) -> str:
        """``"pinyin"``, ``"latin"`` or ``"digits"``."""
        return self._layout

    @property
    def composition(self) -> str:
        """The pinyin letters typed and not yet turned into characters."""
        return self._composition

    @property
    def candidates(self) -> List[str]:
        """All candidates of the composition (every page), best first."""
        return [c.text for c in self._candidates]

    def key(self, name: str) -> QPushButton:
        """The button of a key (see the class docstring), on the layout shown first."""
        shown = "digits" if self._layout == "digits" else "letters"
        for page in (shown, "bar", "letters", "digits"):
            if name in self._keys[page]:
                return self._keys[page][name]
        raise KeyError("no key {!r}".format(name))

    def candidate_buttons(self) -> List[QPushButton]:
        """The candidate buttons of the page shown, in order."""
        return [b for b in self._candidate_buttons if not b.isHidden()]

    def candidate_button(self, text: str) -> Optional[QPushButton]:
        """The shown candidate button with this text, or None."""
        for button in self.candidate_buttons():
            if button.text() == text:
                return button
        return None

    def set_layout(self, name: str) -> None:
        """Show a layout (``LAYOUTS``). Letters still in the composition are typed as they are."""
        if name not in LAYOUTS:
            raise ValueError("keyboard layout must be one of {}, not {!r}".format(", ".join(LAYOUTS), name))
        if name != self._layout:
            self._commit_raw()
        self._layout = name
        if name != "digits":
            self._letters_layout = name
        self._shift = 0
        self.letters_page.setVisible(name != "digits")
        self.digits_page.setVisible(name == "digits")
        self.bar.setVisible(name == "pinyin")
        self.key("letters").setText("拼音" if self._letters_layout == "pinyin" else "ABC")
        self._keys["letters"]["space"].setText("拼音" if name == "pinyin" else "space")
        self._update_letters()
        self._refresh()
        self.adjustSize()
        self.layout_changed.emit(name)

    def reset(self, layout: Optional[str] = None) -> None:
        """Forget the composition (focus moved to another field) and show ``layout`` if given."""
        self._composition = ""
        if layout is not None and layout != self._layout:
            self.set_layout(layout)
        self._shift = 0
        self._update_letters()
        self._refresh()

    # ---- keys -----------------------------------------------------------------------------------

    def press(self, name: str) -> None:
        """What a tap on key ``name`` does (the buttons call this)."""
        if len(name) == 1 and name.isalpha():
            self._letter(name)
        elif len(name) == 1:  # a digit, '-' or '.'
            if self._composition:
                self._commit_all()
            self.send_text(name)
        elif name == "space":
            if self._composition and self._candidates:
                self.choose(0)  # space takes the first candidate
            elif self._composition:
                self._commit_raw()
            else:
                self.send_text(" ")
        elif name == "enter":
            if self._composition:
                self._commit_raw()  # enter types the letters themselves, as phone IMEs do
            else:
                self.send_key(Qt.Key_Return, "\r")
        elif name == "backspace":
            if self._composition:
                self._composition = self._composition[:-1]
                self._refresh()
            else:
                self.send_key(Qt.Key_Backspace, "\b")
        elif name == "shift":
            self._shift = (self._shift + 1) % 3
            self._update_letters()
        elif name == "lang":
            self.set_layout("latin" if self._layout == "pinyin" else "pinyin")
        elif name == "digits":
            self.set_layout("digits")
        elif name == "letters":
            self.set_layout(self._letters_layout)
        elif name == "hide":
            self._composition = ""
            self._refresh()
            self.hide()
        elif name == "prev":
            self._page(-1)
        elif name == "next":
            self._page(1)
        else:
            raise KeyError("no key {!r}".format(name))

    def _letter(self, letter: str) -> None:
        upper = self._shift > 0
        if self._shift == 1:
            self._shift = 0
            self._update_letters()
        if self._layout == "pinyin" and not upper:
            if len(self._composition) < MAX_COMPOSITION:
                self._composition += letter
                self._refresh()
            return
        if self._composition:  # a capital letter in pinyin mode: the letters so far first
            self._commit_raw()
        self.send_text(letter.upper() if upper else letter)

    def choose(self, index: int) -> None:
        """Type candidate ``index`` (of :attr:`candidates`); the letters it does not cover stay composed."""
        if not 0 <= index < len(self._candidates):
            return
        candidate = self._candidates[index]
        self.send_text(candidate.text)
        self._composition = self._composition[candidate.used:].lstrip("'")
        self._refresh()

    def _choose_shown(self, slot: int) -> None:
        self.choose(self._page_starts[-1] + slot)

    def _commit_raw(self) -> None:
        letters, self._composition = self._composition, ""
        if letters:
            self.send_text(letters)
            self._refresh()

    def _commit_all(self) -> None:
        """Type the whole composition as the best candidates (before a digit or symbol)."""
        for _ in range(MAX_COMPOSITION):
            if not self._composition:
                break
            if not self._candidates:
                self._commit_raw()
                break
            self.choose(0)

    # ---- sending to the field -------------------------------------------------------------------

    def receiver(self) -> Optional[QWidget]:
        """Where typing goes: the application's focus widget, else the dock's current field."""
        widget = QApplication.focusWidget()
        if widget is not None and not self.isAncestorOf(widget) and widget is not self:
            return widget
        return self.target

    def send_key(self, key: int, text: str = "", modifiers: "Qt.KeyboardModifiers" = Qt.NoModifier) -> None:
        """A key press and release, as a hardware keyboard sends them."""
        widget = self.receiver()
        if widget is None:
            return
        for kind in (QEvent.KeyPress, QEvent.KeyRelease):
            QApplication.sendEvent(widget, QKeyEvent(kind, key, modifiers, text))

    def send_text(self, text: str) -> None:
        """Type ``text``: one key with its Qt code for a latin letter, digit or symbol, else one event carrying
        the whole text (a Chinese candidate), which QLineEdit inserts like any typed text."""
        if not text:
            return
        if len(text) == 1 and text.isascii():
            if text.isalpha():
                modifiers = Qt.ShiftModifier if text.isupper() else Qt.NoModifier
                self.send_key(Qt.Key_A + ord(text.lower()) - ord("a"), text, modifiers)
                return
            if text.isdigit():
                self.send_key(Qt.Key_0 + int(text), text)
                return
            if text in KEY_CODES:
                self.send_key(KEY_CODES[text], text)
                return
        if all(c.isascii() and c.isalpha() for c in text):  # raw pinyin letters: one key each
            for c in text:
                self.send_text(c)
            return
        self.send_key(Qt.Key_unknown, text)

    # ---- drawing the state ----------------------------------------------------------------------

    def _update_letters(self) -> None:
        for letter in "abcdefghijklmnopqrstuvwxyz":
            self._keys["letters"][letter].setText(letter.upper() if self._shift else letter)
        shift = self._keys["letters"]["shift"]
        shift.setText("⇪" if self._shift == 2 else LABELS["shift"])
        shift.setProperty("active", self._shift > 0)
        shift.style().unpolish(shift)  # re-read the stylesheet for the new property
        shift.style().polish(shift)

    def _refresh(self) -> None:
        """Look the composition up again and show the first page of candidates."""
        if self._layout == "pinyin" and self._composition:
            self._candidates = self.engine.lookup(self._composition, limit=60)
        else:
            self._candidates = []
        self._page_starts = [0]
        pieces = self.engine.segment(self._composition) if self._composition and self._layout == "pinyin" else []
        shown = "'".join(p.letters for p in pieces) if pieces else self._composition
        metrics = QFontMetrics(self.composition_label.font())
        self.composition_label.setText(metrics.elidedText(shown, Qt.ElideLeft, self.composition_label.maximumWidth() - 16))
        self._fill_candidates()
        self.composition_changed.emit(self._composition)

    def _page(self, step: int) -> None:
        if step > 0 and self._page_end() < len(self._candidates):
            self._page_starts.append(self._page_end())
        elif step < 0 and len(self._page_starts) > 1:
            self._page_starts.pop()
        self._fill_candidates()

    def _page_end(self) -> int:
        return self._page_starts[-1] + len(self.candidate_buttons())

    def _fill_candidates(self) -> None:
        """Show as many candidates from the page's first one as fit the bar's width."""
        start = self._page_starts[-1]
        width = self.candidate_area.width()
        if width < 200:  # not laid out yet: what it will have at the keyboard's width
            width = max(self.width(), 1024) - 230 - 2 * (KEY_SIZE + 8) - 4 * SPACING
        metrics = QFontMetrics(self._candidate_font())
        used = 0
        for slot, button in enumerate(self._candidate_buttons):
            index = start + slot
            if index < len(self._candidates):
                text = self._candidates[index].text
                need = max(KEY_SIZE, metrics.horizontalAdvance(text) + 28)
                if slot == 0 or used + need + 2 <= width:
                    button.setText(text)
                    button.setMinimumWidth(need)
                    button.show()
                    used += need + 2
                    continue
            button.hide()
            button.setText("")
        self._keys["bar"]["prev"].setEnabled(start > 0)
        self._keys["bar"]["next"].setEnabled(self._page_end() < len(self._candidates))

    def _candidate_font(self) -> QFont:
        font = QFont(self.font())
        font.setPixelSize(27)
        return font

    # ---- Qt events ------------------------------------------------------------------------------

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)  # type: ignore[arg-type]
        QTimer.singleShot(0, self._fill_candidates)  # the bar's width is known after the layout ran

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[arg-type]
        self.visibility_changed.emit(True)

    def hideEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        super().hideEvent(event)  # type: ignore[arg-type]
        self.visibility_changed.emit(False)


# ---- docking into a window -------------------------------------------------------------------------


def text_field(widget: Optional[QWidget]) -> Optional[QWidget]:
    """The editable text field ``widget`` belongs to (a QLineEdit, a QAbstractSpinBox, an editable QComboBox;
    the line edit inside a spin box or combo box belongs to it), else None."""
    chain = []
    current = widget
    for _ in range(3):
        if current is None:
            break
        chain.append(current)
        current = current.parentWidget()
    for candidate in chain[1:]:  # a spin box's or combo box's own line edit → the box
        if isinstance(candidate, QAbstractSpinBox) or (isinstance(candidate, QComboBox) and candidate.isEditable()):
            return candidate if not _read_only(candidate) else None
    if chain and isinstance(chain[0], (QLineEdit, QAbstractSpinBox)) and not _read_only(chain[0]):
        return chain[0]
    if chain and isinstance(chain[0], QComboBox) and chain[0].isEditable():
        return chain[0]
    return None


def _read_only(widget: QWidget) -> bool:
    return bool(getattr(widget, "isReadOnly", lambda: False)())


def layout_for(field: QWidget, default: str = "pinyin") -> str:
    """The layout a field wants: its ``keyboard`` property, else digits for number validators, passwords and
    spin boxes, else ``default``."""
    wanted = field.property("keyboard")
    if wanted in LAYOUTS:
        return str(wanted)
    if isinstance(field, QAbstractSpinBox):
        return "digits"
    edit = field.lineEdit() if isinstance(field, QComboBox) else field
    if isinstance(edit, QLineEdit):
        if isinstance(edit.validator(), (QIntValidator, QDoubleValidator)):
            return "digits"
        if edit.echoMode() in (QLineEdit.Password, QLineEdit.PasswordEchoOnEdit):
            return "digits"
    return default


class KeyboardDock(QObject):
    """Shows ``keyboard`` over the bottom of ``window`` while a text field of ``window`` has focus.

    The keyboard is a child of ``window`` laid over its bottom edge. While it shows, the window's layout shrinks
    to the space above it, or, where the layout cannot shrink that far, the window's contents slide up; either way
    the focused field shows above the keyboard (see :meth:`_place`), and every QScrollArea around the field is
    scrolled to it. Focus that the window gives a field by itself when it opens does not pop the keyboard up; a
    tap on the field does. ``mode`` says which way room was made ("resize" or "pan")."""

    def __init__(self, window: QWidget, keyboard: Optional[OnScreenKeyboard] = None, default_layout: str = "pinyin") -> None:
        super().__init__(window)
        if default_layout not in LAYOUTS:
            raise ValueError("default layout must be one of {}, not {!r}".format(", ".join(LAYOUTS), default_layout))
        self.window = window
        self.default_layout = default_layout
        self.keyboard = keyboard if keyboard is not None else OnScreenKeyboard(window, layout=default_layout)
        self.keyboard.setParent(window)
        self.keyboard.hide()
        self.field: Optional[QWidget] = None
        self._margins: Optional[Tuple[int, int, int, int]] = None  # the window's own, while the keyboard shows
        self._placing = False
        self._shifted: List[Tuple[QWidget, QPoint]] = []  # children a pan moved up, and where to
        self._pan = 0  # how far they moved
        self.mode = ""  # "resize" or "pan" while the keyboard shows (see _place)
        self.keyboard.visibility_changed.connect(self._visibility_changed)
        self.keyboard.layout_changed.connect(lambda _name: self._place())
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)  # focus changes anywhere; removed with this object (the window's child)

    def detach(self) -> None:
        """Stop following focus and hide the keyboard."""
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.keyboard.hide()

    # focus

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind == QEvent.FocusIn and isinstance(watched, QWidget):
            reason = event.reason()
            if reason != Qt.PopupFocusReason:  # a completer's or combo box's popup: leave things be
                # a window that opens (or comes back) gives its first field focus by itself: the keyboard
                # then waits for a tap on the field instead of covering the page unasked
                self._focus_moved(watched, show=reason != Qt.ActiveWindowFocusReason or self.keyboard.isVisible())
        elif kind == QEvent.MouseButtonRelease and isinstance(watched, QWidget) and self.keyboard.isHidden():
            field = text_field(watched)  # a tap on the field that has focus brings a hidden keyboard back
            if field is not None and field is self.field and (watched.hasFocus() or field.hasFocus()):
                self.show_for(field)
        elif kind == QEvent.Resize and watched is self.window and self.keyboard.isVisible():
            if event.size() != event.oldSize():
                self._place()
        elif kind == QEvent.LayoutRequest and watched is self.window and self._pan:
            QTimer.singleShot(0, self._place)  # the layout is about to put the children back: pan them again
        return False

    def _focus_moved(self, widget: QWidget, show: bool = True) -> None:
        if widget is self.keyboard or self.keyboard.isAncestorOf(widget):
            return
        field = text_field(widget)
        if field is not None and self.window.isAncestorOf(field) and field.isEnabled():
            if show:
                self.show_for(field)
            elif field is not self.field:  # remembered: a tap on it shows the keyboard
                self.keyboard.reset(layout_for(field, self.default_layout))
                self.field = field
                self.keyboard.target = field
        elif self.keyboard.isVisible() or self.field is not None:
            self.field = None
            self.keyboard.target = None
            self.keyboard.hide()

    def show_for(self, field: QWidget) -> None:
        """Show the keyboard for ``field`` with its layout, and keep the field in view."""
        if field is not self.field:
            self.keyboard.reset(layout_for(field, self.default_layout))
        self.field = field
        self.keyboard.target = field
        self.keyboard.show()
        self.keyboard.raise_()
        self._place()

    # geometry

    def _visibility_changed(self, visible: bool) -> None:
        if visible:
            self._place()
            return
        try:
            self._unshift()
            if self._margins is not None:
                margins, self._margins = self._margins, None
                self.window.setContentsMargins(*margins)  # the window's space back
        except RuntimeError:  # the window is being deleted (the app quits)
            self._margins = None
            self._shifted = []

    def _place(self) -> None:
        """Put the keyboard over the window's bottom edge and make room for the field above it:

        * "resize" (as Android's adjustResize): where the window's layout can shrink to the space above the
          keyboard, the window's bottom contents margin grows by the keyboard's height, so the layout, and
          any QScrollArea in it, fits above the keyboard (scrolled to the field);
        * "pan" (adjustPan): where it cannot (its minimum height is more than is left), the layout keeps its
          size, scroll areas scroll what they can, and the window's children move up just enough for the field
          to show above the keyboard. The window never has to grow."""
        if not self.keyboard.isVisible() or self._placing:
            return
        self._placing = True  # changing the margins may resize the window, which calls this again
        try:
            self._place_now()
        finally:
            self._placing = False
        QTimer.singleShot(0, self._scroll_into_view)  # again once nested layouts have run

    def _place_now(self) -> None:
        window = self.window
        height = self.keyboard.sizeHint().height()
        self.keyboard.setGeometry(0, window.height() - height, window.width(), height)
        self.keyboard.raise_()
        self._unshift()
        if self._margins is None:
            margins = window.contentsMargins()
            self._margins = (margins.left(), margins.top(), margins.right(), margins.bottom())
        left, top, right, bottom = self._margins
        layout = window.layout()
        if layout is not None and layout.minimumSize().height() + top + bottom + height <= window.height():
            self.mode = "resize"
            window.setContentsMargins(left, top, right, bottom + height)
            layout.activate()
            self._scroll_into_view()
            return
        self.mode = "pan"
        window.setContentsMargins(left, top, right, bottom)
        if layout is not None:
            layout.activate()
        self._scroll_into_view()
        shift = min(self._field_bottom() - self.keyboard.y() + SPACING, height)
        if shift > 0:
            self._pan = shift
            for child in window.children():
                if isinstance(child, QWidget) and child is not self.keyboard and not child.isWindow():
                    child.move(child.x(), child.y() - shift)
                    self._shifted.append((child, child.pos()))

    def _unshift(self) -> None:
        """Move back what a pan moved up (unless the layout has placed it anew meanwhile)."""
        shifted, self._shifted = self._shifted, []
        for child, moved_to in shifted:
            try:
                if child.pos() == moved_to:
                    child.move(moved_to.x(), moved_to.y() + self._pan)
            except RuntimeError:  # deleted meanwhile
                pass
        self._pan = 0

    def _field_bottom(self) -> int:
        """The field's lowest visible row in window coordinates (0 when there is no field)."""
        field = self.field
        if field is None:
            return 0
        return field.mapTo(self.window, QPoint(0, field.height())).y()

    def _scroll_into_view(self) -> None:
        """Scroll every QScrollArea around the field so that the field shows, and shows above the keyboard."""
        field = self.field
        if field is None or not self.keyboard.isVisible():
            return
        try:
            parent = field.parentWidget()
            while parent is not None and parent is not self.window:
                area = parent.parentWidget()
                if isinstance(area, QScrollArea) and parent is area.viewport():
                    area.ensureWidgetVisible(field, 20, 20)
                    below = self._field_bottom() - self.keyboard.y() + 20  # still under the keyboard by
                    if below > 0:
                        bar = area.verticalScrollBar()
                        bar.setValue(bar.value() + below)
                parent = parent.parentWidget()
        except RuntimeError:  # the field was deleted meanwhile
            self.field = None


def attach_keyboard(window: QWidget, default_layout: str = "pinyin") -> OnScreenKeyboard:
    """Give ``window`` an on-screen keyboard that shows while one of its text fields has focus (see
    :class:`KeyboardDock`). Returns the keyboard; its dock is ``keyboard.dock``."""
    dock = KeyboardDock(window, default_layout=default_layout)
    dock.keyboard.dock = dock  # type: ignore[attr-defined]
    return dock.keyboard
