"""The on-screen keyboard (kiosk.ui.keyboard): the pinyin engine, its table, and the Qt widget with its dock."""

from __future__ import annotations

import os

import pytest

from kiosk.ui.keyboard.pinyin import TABLE_PATH, Candidate, PinyinEngine, default_engine


@pytest.fixture(scope="module")
def engine() -> PinyinEngine:
    return default_engine().load()


# ---- the table -----------------------------------------------------------------------------------


def test_table_exists_small_credited_and_loads():
    assert os.path.isfile(TABLE_PATH)
    assert os.path.getsize(TABLE_PATH) < 600 * 1024
    with open(TABLE_PATH, encoding="utf-8") as handle:
        head = handle.read(400)
    assert "pypinyin" in head and "MIT" in head
    fresh = PinyinEngine().load()  # about 0.1 s here (README); speed is measured, not asserted
    assert len(fresh.table.chars) > 380 and len(fresh.table.words) > 10000


def test_table_is_what_the_tool_writes_now():
    """The committed file matches pinyin_data.py (rerun tools/make_pinyin_table.py after changing it)."""
    from importlib.metadata import version

    from kiosk.ui.keyboard.pinyin_data import build_table, table_lines

    with open(TABLE_PATH, encoding="utf-8") as handle:
        text = handle.read()
    made_with = "pypinyin {} ".format(version("pypinyin"))
    if made_with not in text[:400]:  # another pypinyin release reads some words differently: nothing to compare
        pytest.skip("the table was made with another pypinyin than the installed {}".format(made_with.strip()))
    committed = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert committed == table_lines(build_table())


def test_missing_table_is_built_from_pypinyin(tmp_path):
    engine = PinyinEngine(str(tmp_path / "absent.txt"))
    assert engine.candidates("wang")[0] == "王"


# ---- the engine ----------------------------------------------------------------------------------


def test_names_rank_first(engine):
    assert "张三" in engine.candidates("zhangsan")[:3]
    assert engine.candidates("wang")[0] == "王"
    assert "李" in engine.candidates("li")[:3]
    assert "陈" in engine.candidates("chen")[:3]
    assert "小明" in engine.candidates("xiaoming")[:5]
    assert "王小明" in engine.candidates("wangxiaoming")[:3]
    assert "刘" in engine.candidates("liu")[:2]


def test_common_characters_and_words(engine):
    assert engine.candidates("de")[0] == "的"
    assert "是" in engine.candidates("shi")[:4]  # after the surnames 石 史
    assert engine.candidates("beijing")[0] == "北京"
    assert engine.candidates("beijingdaxue")[0] == "北京大学"
    assert "西安" in engine.candidates("xi'an")[:2]
    assert "先" in engine.candidates("xian")[:3]  # one syllable, not xi'an


def test_v_and_u_umlaut(engine):
    lv = engine.candidates("lv")
    assert "吕" in lv[:3] and "绿" in lv
    assert engine.candidates("lü") == lv
    assert engine.candidates("lue")[:1] == ["略"]
    assert "女" in engine.candidates("nv")[:2]


def test_half_typed_last_syllable_and_abbreviation(engine):
    assert "张三" in engine.candidates("zhangs")
    assert "知识" in engine.candidates("zs") or "正是" in engine.candidates("zs")
    assert engine.candidates("z")[0] == "张"  # a surname first at the start


def test_partial_commit_leaves_the_remaining_letters(engine):
    found = engine.lookup("zhangsan")
    assert Candidate("张三", 8) in found
    single = [c for c in found if c.text == "张"]
    assert single == [Candidate("张", 5)]
    rest = "zhangsan"[single[0].used:]
    assert rest == "san"
    assert engine.candidates(rest)[0] == "三"
    # a word of the first syllables covers only them
    assert Candidate("北京", 7) in engine.lookup("beijingdaxue")


@pytest.mark.parametrize("garbage", ["xqz", "", "123", "zh!", "张", "q" * 80, "'''", "iii", "zhang san"])
def test_not_pinyin_gives_nothing(engine, garbage):
    assert engine.candidates(garbage) == []


def test_upper_case_is_read_as_letters(engine):
    assert engine.candidates("Wang")[0] == "王"
    assert engine.candidates("ZHANGSAN")[:1] == ["张三"]


def test_limit_and_long_input(engine):
    assert len(engine.candidates("zhangsan", limit=5)) == 5
    for word in ("zhangsanfeng", "beijingdaxue", "wangxiaom", "zs", "shi", "x"):  # speed is measured, not asserted
        assert engine.lookup(word)


# ---- the widget ----------------------------------------------------------------------------------

QtWidgets = pytest.importorskip("PyQt5.QtWidgets")


@pytest.fixture
def window(qtbot):
    from PyQt5.QtGui import QIntValidator
    from PyQt5.QtWidgets import QComboBox, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget

    from kiosk.ui.keyboard.keyboard import attach_keyboard

    win = QWidget()
    win.resize(1024, 600)
    layout = QVBoxLayout(win)
    win.name = QLineEdit()
    win.digits = QLineEdit()
    win.digits.setProperty("keyboard", "digits")
    win.number = QLineEdit()
    win.number.setValidator(QIntValidator(0, 9999))
    win.password = QLineEdit()
    win.password.setEchoMode(QLineEdit.Password)
    win.latin = QLineEdit()
    win.latin.setProperty("keyboard", "latin")
    win.spin = QSpinBox()
    win.spin.setRange(0, 999)
    win.combo = QComboBox()
    win.combo.setEditable(True)
    win.button = QPushButton("保存")
    win.back = QPushButton("返回")  # first in the focus chain: the window's own focus goes here, not to a field
    for widget in (win.back, win.name, win.digits, win.number, win.password, win.latin, win.spin, win.combo, win.button):
        layout.addWidget(widget)
    layout.addStretch(1)
    win.keyboard = attach_keyboard(win)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitActive(win)
    qtbot.waitUntil(lambda: win.back.hasFocus())  # the window gave its first widget focus
    return win


def focus(qtbot, widget):
    from PyQt5.QtWidgets import QApplication

    widget.setFocus()

    def has_focus() -> bool:
        current = QApplication.focusWidget()
        return current is widget or (current is not None and widget.isAncestorOf(current))

    qtbot.waitUntil(has_focus)


def tap(qtbot, keyboard, *names):
    from PyQt5.QtCore import Qt

    for name in names:
        qtbot.mouseClick(keyboard.key(name), Qt.LeftButton)


def test_focus_on_a_line_edit_shows_pinyin(qtbot, window):
    keyboard = window.keyboard
    assert keyboard.isHidden()
    focus(qtbot, window.name)
    qtbot.waitUntil(keyboard.isVisible)
    assert keyboard.layout_name == "pinyin"
    # docked at the bottom, full width, and the field shows above it
    assert keyboard.geometry().bottom() == window.height() - 1
    assert keyboard.width() == window.width()
    assert window.name.mapTo(window, window.name.rect().bottomLeft()).y() < keyboard.y()


def test_typing_zhangsan_and_tapping_the_candidate(qtbot, window):
    from PyQt5.QtCore import Qt

    keyboard = window.keyboard
    focus(qtbot, window.name)
    edited = []
    window.name.textEdited.connect(edited.append)
    tap(qtbot, keyboard, *"zhangsan")
    assert keyboard.composition == "zhangsan"
    assert window.name.text() == ""  # letters stay in the composition
    button = keyboard.candidate_button("张三")
    assert button is not None
    qtbot.mouseClick(button, Qt.LeftButton)
    assert window.name.text() == "张三"
    assert edited == ["张三"]
    assert keyboard.composition == ""
    assert window.name.hasFocus()  # the keys never take focus


def test_single_character_leaves_the_rest_composed(qtbot, window):
    from PyQt5.QtCore import Qt

    keyboard = window.keyboard
    focus(qtbot, window.name)
    tap(qtbot, keyboard, *"zhangsan")
    qtbot.mouseClick(keyboard.candidate_button("张"), Qt.LeftButton)
    assert window.name.text() == "张"
    assert keyboard.composition == "san"
    assert keyboard.candidates[0] == "三"
    tap(qtbot, keyboard, "space")  # space takes the first candidate
    assert window.name.text() == "张三"


def test_enter_types_the_letters_and_paging(qtbot, window):
    keyboard = window.keyboard
    focus(qtbot, window.name)
    tap(qtbot, keyboard, *"shi")
    first_page = [b.text() for b in keyboard.candidate_buttons()]
    assert keyboard.key("next").isEnabled() and not keyboard.key("prev").isEnabled()
    tap(qtbot, keyboard, "next")
    second_page = [b.text() for b in keyboard.candidate_buttons()]
    assert second_page and not set(first_page) & set(second_page)
    assert second_page[0] == keyboard.candidates[len(first_page)]
    tap(qtbot, keyboard, "prev")
    assert [b.text() for b in keyboard.candidate_buttons()] == first_page
    tap(qtbot, keyboard, "enter")
    assert window.name.text() == "shi"
    assert keyboard.composition == ""


def test_digits_property_gives_the_keypad(qtbot, window):
    keyboard = window.keyboard
    focus(qtbot, window.digits)
    qtbot.waitUntil(keyboard.isVisible)
    assert keyboard.layout_name == "digits"
    tap(qtbot, keyboard, "1", "2", "3", "4")
    assert window.digits.text() == "1234"
    tap(qtbot, keyboard, "-", "5", ".", "6", "backspace")
    assert window.digits.text() == "1234-5."


@pytest.mark.parametrize("field,layout", [("number", "digits"), ("password", "digits"), ("spin", "digits"),
                                          ("latin", "latin"), ("combo", "pinyin"), ("name", "pinyin")])
def test_layout_per_field(qtbot, window, field, layout):
    widget = getattr(window, field)
    focus(qtbot, widget)
    qtbot.waitUntil(window.keyboard.isVisible)
    assert window.keyboard.layout_name == layout


def test_validator_and_spin_box_see_real_key_events(qtbot, window):
    keyboard = window.keyboard
    focus(qtbot, window.number)
    tap(qtbot, keyboard, "9", "8", "7", "6", "5")  # QIntValidator(0, 9999) refuses the fifth digit
    assert window.number.text() == "9876"
    window.spin.lineEdit().selectAll()
    focus(qtbot, window.spin)
    qtbot.waitUntil(lambda: keyboard.layout_name == "digits")
    window.spin.lineEdit().selectAll()
    tap(qtbot, keyboard, "4", "2")
    assert window.spin.lineEdit().text() == "42"


def test_max_length_is_kept(qtbot, window):
    keyboard = window.keyboard
    window.name.setMaxLength(3)
    focus(qtbot, window.name)
    tap(qtbot, keyboard, *"zhangsan")
    tap(qtbot, keyboard, "space")
    tap(qtbot, keyboard, *"li")
    tap(qtbot, keyboard, "space")
    tap(qtbot, keyboard, *"wang")
    tap(qtbot, keyboard, "space")
    assert window.name.text() == "张三李"


def test_backspace_edits_the_composition_first(qtbot, window):
    keyboard = window.keyboard
    window.name.setText("王")
    focus(qtbot, window.name)
    window.name.end(False)
    tap(qtbot, keyboard, "l", "i")
    tap(qtbot, keyboard, "backspace")
    assert keyboard.composition == "l" and window.name.text() == "王"
    tap(qtbot, keyboard, "backspace")
    assert keyboard.composition == "" and window.name.text() == "王"
    tap(qtbot, keyboard, "backspace")
    assert window.name.text() == ""


def test_latin_shift_and_language_key(qtbot, window):
    keyboard = window.keyboard
    focus(qtbot, window.name)
    tap(qtbot, keyboard, "lang")
    assert keyboard.layout_name == "latin"
    tap(qtbot, keyboard, "shift", "a", "b", "space", "shift", "shift", "c", "d", "shift", "e")
    assert window.name.text() == "Ab CDe"
    tap(qtbot, keyboard, "lang")
    assert keyboard.layout_name == "pinyin"
    tap(qtbot, keyboard, "digits")
    assert keyboard.layout_name == "digits"
    tap(qtbot, keyboard, "letters")
    assert keyboard.layout_name == "pinyin"


def test_focus_on_a_button_hides_and_hide_key(qtbot, window):
    from PyQt5.QtCore import Qt

    keyboard = window.keyboard
    focus(qtbot, window.name)
    qtbot.waitUntil(keyboard.isVisible)
    focus(qtbot, window.button)
    qtbot.waitUntil(keyboard.isHidden)
    focus(qtbot, window.name)
    qtbot.waitUntil(keyboard.isVisible)
    tap(qtbot, keyboard, "hide")
    assert keyboard.isHidden() and window.name.hasFocus()
    qtbot.mouseClick(window.name, Qt.LeftButton)  # a tap on the field brings it back
    qtbot.waitUntil(keyboard.isVisible)


def test_keys_are_big_enough_and_never_take_focus(qtbot, window):
    from PyQt5.QtCore import QPoint, QRect, Qt
    from PyQt5.QtWidgets import QPushButton

    from kiosk.ui.keyboard.keyboard import KEY_SIZE

    keyboard = window.keyboard
    assert KEY_SIZE >= 60
    focus(qtbot, window.name)
    tap(qtbot, keyboard, *"wang")
    for field, layout in ((window.name, "pinyin"), (window.latin, "latin"), (window.digits, "digits")):
        focus(qtbot, field)
        qtbot.waitUntil(lambda wanted=layout: keyboard.layout_name == wanted)
        qtbot.wait(10)  # the layout runs
        buttons = [b for b in keyboard.findChildren(QPushButton) if b.isVisible()]
        assert len(buttons) >= 15
        for button in buttons:
            assert button.width() >= 60 and button.height() >= 60, (layout, button.text(), button.size())
            assert button.focusPolicy() == Qt.NoFocus
            assert keyboard.rect().contains(QRect(button.mapTo(keyboard, QPoint(0, 0)), button.size()))
    assert keyboard.focusPolicy() == Qt.NoFocus


def test_field_in_a_scroll_area_is_scrolled_above_the_keyboard(qtbot):
    from PyQt5.QtWidgets import QApplication, QLineEdit, QScrollArea, QVBoxLayout, QWidget

    from kiosk.ui.keyboard.keyboard import attach_keyboard

    win = QWidget()
    win.resize(1024, 600)
    outer = QVBoxLayout(win)
    area = QScrollArea()
    area.setWidgetResizable(True)
    form = QWidget()
    rows = QVBoxLayout(form)
    fields = [QLineEdit() for _ in range(20)]
    for field in fields:
        field.setMinimumHeight(40)
        rows.addWidget(field)
    area.setWidget(form)
    outer.addWidget(area)
    keyboard = attach_keyboard(win)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitActive(win)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None)  # the window's own focus (the scroll area)
    assert keyboard.isHidden()
    last = fields[-1]
    focus(qtbot, last)
    qtbot.waitUntil(keyboard.isVisible)

    def above() -> bool:
        return last.mapTo(win, last.rect().bottomLeft()).y() < keyboard.y() and last.visibleRegion().boundingRect().height() > 0

    qtbot.waitUntil(above)
    # the scroll area can shrink: the window's layout gets the space above the keyboard
    assert keyboard.dock.mode == "resize"
    assert win.contentsMargins().bottom() == keyboard.height()
    assert area.geometry().bottom() < keyboard.y()
    focus(qtbot, win)  # a plain widget: not a text field
    qtbot.waitUntil(keyboard.isHidden)
    assert win.contentsMargins().bottom() == 0  # the window's space back


def test_colours_are_high_contrast():
    from kiosk.ui.keyboard.keyboard import COLORS

    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def contrast(a: str, b: str) -> float:
        high, low = sorted((luminance(a), luminance(b)), reverse=True)
        return (high + 0.05) / (low + 0.05)

    for text, background in (("key_text", "key"), ("function_text", "function"), ("accent_text", "accent"),
                             ("candidate_text", "bar"), ("composition_text", "bar"), ("key_text", "pressed")):
        assert contrast(COLORS[text], COLORS[background]) >= 4.5, (text, background)


def test_package_import_does_not_need_qt():
    import subprocess
    import sys

    code = "import sys, kiosk.ui.keyboard as k; k.PinyinEngine; assert 'PyQt5' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_window_that_cannot_shrink_pans_instead_of_growing(qtbot):
    """A page whose minimum height leaves no room for the keyboard (the operator screen's residents page): the
    window keeps its size, its contents slide up just enough for the field, and slide back on hide."""
    from PyQt5.QtWidgets import QLabel, QLineEdit, QVBoxLayout, QWidget

    from kiosk.ui.keyboard.keyboard import attach_keyboard

    win = QWidget()
    win.resize(1024, 600)
    layout = QVBoxLayout(win)
    tall = QLabel("住户列表")
    tall.setMinimumHeight(440)
    top = QLineEdit()
    bottom = QLineEdit()
    for widget in (top, tall, bottom):
        layout.addWidget(widget)
    keyboard = attach_keyboard(win)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitActive(win)
    qtbot.waitUntil(top.hasFocus)  # the window's own focus: no keyboard until a tap or a focus change
    assert keyboard.isHidden()
    before = tall.pos()
    focus(qtbot, bottom)
    qtbot.waitUntil(keyboard.isVisible)
    assert keyboard.dock.mode == "pan"
    qtbot.wait(20)
    assert win.size().height() == 600 and win.minimumSizeHint().height() <= 600
    assert bottom.mapTo(win, bottom.rect().bottomLeft()).y() < keyboard.y()
    assert tall.y() < before.y() and tall.height() >= 440  # moved up, not squeezed
    tap(qtbot, keyboard, *"ni")
    tap(qtbot, keyboard, "space")
    assert bottom.text() == "你"
    tap(qtbot, keyboard, "hide")
    assert tall.pos() == before and win.contentsMargins().bottom() == 0
