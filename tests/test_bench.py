"""The benchmark commands measure what they say (speed figures themselves are never asserted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import pytest
from conftest import SHARED

from kiosk.bench.stability import _flips, perturb, run_stability_bench
from kiosk.core.events import Mask

PEER = SHARED / "peers" / "ultraface" / "RFB-640-masked_face-v2.onnx"


@dataclass
class Det:
    box: Tuple[int, int, int, int]
    mask: Mask
    confidence: float


class Flicker:
    """A detector that gets one frame in four wrong, like a classifier on a noisy camera."""

    def __init__(self):
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        wrong = self.calls % 4 == 0
        return [Det((200, 100, 360, 300), Mask.WITHOUT if wrong else Mask.WITH, 0.9)]


def test_vote_removes_single_frame_flicker():
    result = run_stability_bench(Flicker(), frames=20)
    demo = result["demo"]
    assert demo["scenes"] == 6
    assert demo["raw_flips_per_100_frames"] > 30  # every fourth frame flips and flips back
    assert demo["voted_flips_per_100_frames"] == 0


def test_flip_counting_ignores_unknown_frames():
    assert _flips([None, Mask.WITH, None, Mask.WITH, Mask.WITHOUT, Mask.WITH]) == 2


def test_perturbation_is_seeded():
    frame = np.full((120, 160, 3), 128, np.uint8)
    a = perturb(frame, np.random.default_rng(3))
    b = perturb(frame, np.random.default_rng(3))
    assert np.array_equal(a, b) and a.shape == frame.shape


@pytest.mark.skipif(not PEER.exists(), reason="peer model lives in ../shared/peers")
def test_peer_finds_the_masked_demo_face():
    from kiosk.bench.vision import UltraFaceMasked, demo_frames

    found = UltraFaceMasked(str(PEER)).detect(demo_frames(2)[0])
    assert [label for _, label in found] == ["masked_face"]


def test_the_fault_bench_runs_a_case_against_a_real_kiosk_process():
    """The harness of ``bench faults`` (a real ``run --headless`` on a recording pty relay) on its quickest case."""
    pytest.importorskip("serial")
    from kiosk.bench.faults import run_faults

    report = run_faults(["config_nested_500"], fuzz=0)
    row = report["cases"]["config_nested_500"]
    assert row["expected"], row
    assert (row["gate_after"], row["exit"], row["traceback"]) == ("off", 2, False)
    assert report["summary"] == {"cases": 1, "as_expected": 1, "skipped": 0, "gate_left_open": 0,
                                 "records_lost": 0, "tracebacks": 0}
