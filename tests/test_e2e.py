"""End to end: rendered camera streams through capture → detector → QR → verifier → core → gate/voice/log.

Needs the face detector (installed from ../shared/models by the project's own `models fetch`),
the project's mask classifier in engines/ and the demo assets; skipped with the reason otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, SHARED

MODELS = SHARED / "models"
pytestmark = pytest.mark.skipif(
    not MODELS.is_dir() or not (REPO / "engines" / "mask_classifier.onnx").exists()
    or not (REPO / "assets" / "demo" / "person1_with_mask.png").exists(),
    reason="needs ../shared/models (YuNet), engines/mask_classifier.onnx and assets/demo",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from kiosk.config import Home
    from kiosk.demo.run import prepare_home, scenarios
    from kiosk.runtime.assemble import assemble

    out = tmp_path_factory.mktemp("e2e")
    home = Home(out / "home")
    tokens = prepare_home(home, MODELS, out / "speech")
    parts = assemble(home)
    assert parts.problems == [] or all(p.startswith("speech") for p in parts.problems), parts.problems
    yield parts, {s.name: s for s in scenarios(tokens)}
    parts.close()


CASES = [
    ("granted", "granted", "ok", True),
    ("no_mask", "denied", "no_mask", False),
    ("mask_incorrect", "denied", "mask_incorrect", False),
    ("forged_pass", "denied", "bad_signature", False),
    ("expired_pass", "denied", "expired", False),
    ("revoked_resident", "denied", "resident_revoked", False),
    ("other_community", "denied", "wrong_community", False),
    ("unreadable_then_readable", "granted", "ok", True),
    ("person_leaves", "abandoned", "left", False),
]


@pytest.mark.parametrize("name, outcome, reason, opened", CASES, ids=[c[0] for c in CASES])
def test_scenario(world, name, outcome, reason, opened):
    from kiosk.demo.run import play

    parts, by_name = world
    before = len(parts.store.access_log.list(limit=1000))
    gate_before = len(parts.gate.pulses)
    result = play(parts, by_name[name], keep_frames=False)
    assert (result.outcome, result.reason) == (outcome, reason), "\n".join(map(str, result.timeline))
    assert result.gate_opened is opened
    assert len(parts.gate.pulses) - gate_before == (1 if opened else 0)
    rows = parts.store.access_log.list(limit=1000)
    assert len(rows) == before + len(result.decisions)  # every decision reached the log
    assert rows[len(rows) - before - 1]["outcome"] == outcome
    if name == "unreadable_then_readable":
        blurred_until = 18 / 10.0  # the pass is blurred until frame 18
        first_read = min(t for t, kind, _ in result.timeline if kind == "pass")
        assert first_read >= blurred_until - 0.05
    if opened:
        assert result.latencies_ms and all(ms > 0 for ms in result.latencies_ms)


def test_demo_command_writes_report_and_video(tmp_path):
    from kiosk.cli import main

    out = tmp_path / "demo"
    code = main(["demo", "--headless", "--out", str(out), "--models-from", str(MODELS),
                 "--scenario", "granted", "--scenario", "person_leaves"])
    import json

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert code == 0 and report["all_passed"]
    assert [s["name"] for s in report["scenarios"]] == ["granted", "person_leaves"]
    assert {"name", "expected", "outcome", "reason", "gate_opened"} <= set(report["scenarios"][0])
    assert Path(out / "demo.gif").stat().st_size > 10_000
    assert (out / "timeline.txt").read_text(encoding="utf-8").count("==") == 2
