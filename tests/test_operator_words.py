"""The operator screen speaks to a front-desk person (issue 13, items 4 and 7): a preview of a camera that is down
says so and what to do instead of "Opening…" for ever, with no exception text; the demo says whose data it edits."""

from __future__ import annotations

import pytest

pytest.importorskip("PyQt5.QtWidgets", reason="PyQt5 not installed (pip install 'dabai-kiosk[ui]')")
pytest.importorskip("pytestqt", reason="pytest-qt not installed")



@pytest.fixture
def make(operator_screens):
    return lambda **kwargs: operator_screens(show=True, **kwargs)


def test_the_preview_of_a_running_camera_that_gives_no_picture_says_so(qtbot, make, monkeypatch):
    from kiosk.vision.capture import Capture

    monkeypatch.setattr(Capture, "first_frame_grace_s", 0.3)
    page = make(frames=lambda: None).show_page("devices")  # the app's camera is down: it has no frame to lend
    assert page.preview_note.text().startswith("正在")
    qtbot.waitUntil(lambda: page.preview_note.is_error, timeout=5000)
    text = page.preview_note.text()
    assert "没有画面" in text and "检查" in text  # what is wrong and what to do
    assert "Error" not in text and "running kiosk" not in text  # the detail went to the log


def test_the_demo_says_it_edits_its_own_data_home(make, home):
    demo = make(demo=True)
    assert demo.demo_banner.isVisible() and str(home.root) in demo.demo_banner.text()
    assert "演示" in demo.demo_banner.text()
    demo.show_page("policy")
    assert demo.demo_banner.isVisible()  # on every page
    assert not make().demo_banner.isVisible()  # the real kiosk shows no such banner
