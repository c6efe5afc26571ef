"""The operator's journey end to end, by taps only, on a real X server (issue 13, item 8): open the screen with the
long press, the console's setup code and a new PIN; add 张三 through the on-screen pinyin keyboard; issue and print
a pass; revoke it through the confirmation; change a policy; read the log; restart. Screenshots of each step."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("PyQt5.QtWidgets", reason="PyQt5 not installed (pip install 'dabai-kiosk[ui]')")

STEPS = ["long_press_opens_the_pin_dialog", "pin_set_and_screen_open", "resident_added_by_keyboard", "pass_issued",
         "pass_printed", "pass_revoked_after_confirmation", "policy_saved", "log_shows_operator_actions",
         "restart_requested"]


def test_the_operator_journey_on_a_real_x_server(xvfb_env, tmp_path):
    out = subprocess.run([sys.executable, "-m", "kiosk.ui.journey", "--out", str(tmp_path / "shots")], env=xvfb_env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    steps = [line for line in lines if "step" in line]
    assert [s["step"] for s in steps] == STEPS and all(s["ok"] for s in steps)
    assert steps[2]["residents"] == [["张三", "3-201"]]
    assert "张三" in steps[5]["asked"][0] and steps[6]["cooldown_s"] == 3.5
    shots = sorted((tmp_path / "shots").glob("operator-journey-*.png"))
    assert len(shots) == lines[-1]["screenshots"] >= 14
    assert all(p.stat().st_size > 10_000 for p in shots)  # real pictures of the screen, not blank grabs
