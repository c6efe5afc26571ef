"""The pass fuzz: no mutated or forged payload verifies, nothing raises (speed figures are not asserted)."""

from __future__ import annotations

import json

from kiosk.bench.passfuzz import run_pass_fuzz
from kiosk.cli import main


def test_no_mutated_payload_is_accepted_and_nothing_raises():
    result = run_pass_fuzz(n=2000, seed=3)
    assert result["payloads"] == 2000
    assert result["accepted_non_genuine"] == 0, result["accepted_examples"]
    assert result["exceptions"] == 0, result["exception_examples"]
    assert result["reasons"]["malformed"] > 0 and result["reasons"]["bad_signature"] > 0
    assert result["reasons"]["wrong_community"] > 0 and result["reasons"]["pass_revoked"] > 0
    assert result["verify_ms"]["p50"] <= result["verify_ms"]["p99"]


def test_the_same_seed_gives_the_same_payloads():
    a, b = run_pass_fuzz(n=300, seed=7), run_pass_fuzz(n=300, seed=7)
    assert (a["distinct_payloads"], a["reasons"]) == (b["distinct_payloads"], b["reasons"])


def test_bench_passes_command(home, capsys):
    assert main(["bench", "passes", "--n", "200", "--seed", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["payloads"] == 200 and result["accepted_non_genuine"] == 0 and result["exceptions"] == 0
