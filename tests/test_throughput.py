"""The throughput bench: a live queue of masked residents through the real pipeline, counted end to end."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from kiosk.bench.throughput import process_report, resident_names

pytestmark = pytest.mark.skipif(
    not (REPO / "engines" / "face_detector.onnx").exists() or not (REPO / "engines" / "mask_classifier_ft.onnx").exists()
    or not (REPO / "assets" / "demo" / "person1_with_mask.png").exists(),
    reason="needs the default detector pair in engines/ and assets/demo",
)


def test_a_short_queue_is_let_through_one_by_one(tmp_path):
    from kiosk.bench.throughput import run_throughput

    # The same code as the bench; only the policy's hold after each grant is shortened (still longer
    # than walking off) so five residents take seconds.
    report = run_throughput(tmp_path, None, residents=5, policy={"result_hold_s": 0.8, "cooldown_s": 0.0}, sample_s=1.0)
    assert report["residents"] == 5 and report["granted"] == 5, report["not_granted"]
    assert report["gate_pulses"] == 5 and report["log_records"] == 5 and report["log_granted"] == 5
    assert report["log_pending"] == 0 and report["stray_decisions"] == [] and report["all_granted"]
    assert report["decision_latency_ms"]["n"] == 5 and report["step_up_to_gate_ms"]["n"] == 5
    for key in ("residents_per_minute", "cycle_s", "gate_to_next_person_ms", "vision_step_ms", "vision_stage_ms", "frames",
                "policy", "goals", "process", "machine", "problems"):
        assert key in report
    assert report["residents_per_minute"] > 0 and report["frames"]["processed"] > 0
    assert report["policy"]["ceiling_per_minute"] == 75.0
    assert {"rss_mb", "threads", "open_fds"} <= set(report["process"])
    assert report["machine"]["cpu_count"] >= 1 and len(report["machine"]["load_average_start"]) == 3
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["granted"] == 5


def test_memory_growth_is_counted_from_the_end_of_the_warm_up():
    samples = [(0.0, {"rss_mb": 100.0, "threads": 9, "open_fds": 12}),
               (60.0, {"rss_mb": 200.0, "threads": 11, "open_fds": 13}),
               (120.0, {"rss_mb": 210.0, "threads": 11, "open_fds": 13})]
    report = process_report(samples, warmup_s=60.0)
    assert report["rss_mb"] == {"start": 100.0, "after_warmup": 200.0, "end": 210.0, "max": 210.0}
    assert report["rss_growth_pct"] == 5.0 and report["threads"]["end"] == 11
    assert process_report(samples[:1], warmup_s=60.0)["rss_growth_pct"] is None  # too short to say


def test_residents_have_different_names():
    names = resident_names(600)
    assert len(set(names)) == 600


def test_the_command_runs_the_bench_with_its_options(monkeypatch, tmp_path, capsys):
    import kiosk.bench.throughput as throughput
    from kiosk.cli import main

    seen = {}

    def fake(out, models_from, **options):
        seen.update(options, out=out)
        return {"all_granted": True, "residents_per_minute": 15.0}

    monkeypatch.setattr(throughput, "run_throughput", fake)
    code = main(["bench", "throughput", "--residents", "7", "--soak-minutes", "3", "--out", str(tmp_path), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["residents_per_minute"] == 15.0
    assert seen["residents"] == 7 and seen["soak_minutes"] == 3.0 and seen["out"] == tmp_path
