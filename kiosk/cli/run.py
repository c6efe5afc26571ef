"""``dabai-kiosk run | demo | doctor | screenshots``: the kiosk itself, its demo and its checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Tuple

from kiosk.cli.common import Add, UserError, home_of, models_from


def _say(text: str) -> None:
    """A line for the journal, and the unit's status line under systemd (``systemctl status``)."""
    from kiosk.runtime.watchdog import Notifier

    print("dabai-kiosk: " + text, file=sys.stderr, flush=True)
    Notifier().status(text)


def _no_window(wait_s: float = 0.0, every_s: float = 3.0) -> Tuple[Optional[str], bool]:
    """Why no window can open here (None: it can), and whether asking again later may help (a display
    that is not up yet, as opposed to no PyQt5 or no display configured at all). A window is tried in a
    child process first (:mod:`kiosk.runtime.display`): Qt aborts a process that cannot reach its display."""
    from kiosk.ui import display_missing, qt_missing

    why = qt_missing() or display_missing()
    if why is not None:
        return why, False
    from kiosk.runtime.display import wait_for_window

    return wait_for_window(wait_s, every_s, say=_say), True


def _open_window(args: argparse.Namespace, demo: bool) -> int:
    from kiosk.ui.app import DemoOptions, run_app
    from kiosk.ui.screen import parse_size

    size = parse_size(args.window) if args.window else None
    options = DemoOptions(Path(args.out), models_from(args), args.scenario or None, args.loop) if demo else None
    return run_app(home_of(args), fullscreen=size is None, size=size, duration=args.duration, demo=options,
                   measure=args.measure)


def _windowed(args: argparse.Namespace, demo: bool) -> Optional[int]:
    """Runs the Qt app (the kiosk, or the demo in the window); None when no window can open here,
    after saying why (the caller then runs headless)."""
    why, _ = _no_window()
    if why is not None:
        print("dabai-kiosk: no window: {}; running headless".format(why), file=sys.stderr)
        return None
    return _open_window(args, demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk.demo.run import run_demo

    if not args.headless:
        rc = _windowed(args, demo=True)
        if rc is not None:
            return rc
    out = Path(args.out)
    report = run_demo(out, models_from(args), only=args.scenario or None, repeat=args.repeat)
    passed = sum(1 for s in report["scenarios"] if s["passed"])
    print("\n{}/{} scenarios as expected; decision latency p50 {} ms; vision step p50 {} ms".format(
        passed, len(report["scenarios"]), report["decision_latency_ms"].get("p50"),
        report["vision_step_ms"].get("p50")))
    print("report: {}  media: {}".format(out / "report.json", ", ".join(report.get("media", []))))
    return 0 if report["all_passed"] else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from kiosk.runtime.doctor import run_doctor

    return run_doctor(home_of(args))


def cmd_run(args: argparse.Namespace) -> int:
    from kiosk.runtime.headless import run_headless

    if args.demo:
        return cmd_demo(args)
    if args.headless:
        from kiosk.runtime.display import prepare_session_env

        for note in prepare_session_env():  # the sound server's runtime dir: a headless kiosk speaks too
            print("dabai-kiosk: using {}".format(note), file=sys.stderr, flush=True)
        return run_headless(home_of(args), args.duration)
    wait = max(0.0, args.display_wait)
    why, later = _no_window(wait, every_s=min(3.0, args.display_recheck))
    if why is None:
        return _open_window(args, demo=False)
    print("dabai-kiosk: no window: {}; running headless".format(why), file=sys.stderr, flush=True)
    if later and wait > 0:  # supervised: look for the display again, and restart into the window once it is up
        from kiosk.runtime.display import DisplayWatch

        return run_headless(home_of(args), args.duration, display=DisplayWatch(args.display_recheck))
    return run_headless(home_of(args), args.duration)


def cmd_screenshots(args: argparse.Namespace) -> int:
    from kiosk.ui import qt_missing

    why = qt_missing()
    if why is not None:
        raise UserError(why)
    if args.journey:  # the operator's journey by taps, on whatever display Qt is given (Xvfb in CI)
        from kiosk.ui.journey import main as journey

        return journey(["--out", args.out, "--format", args.format])
    from kiosk.ui.screen import parse_size
    from kiosk.ui.screenshots import SIZES, run_screenshots

    sizes = [parse_size(text) for text in args.size] if args.size else list(SIZES)
    return run_screenshots(Path(args.out), sizes, operator=not args.no_operator, fmt=args.format)


def window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", metavar="WxH", help="a window of this size instead of fullscreen, e.g. 1024x600")
    p.add_argument("--measure", action="store_true",
                   help="print frame-to-display latency and the longest UI stall as JSON at the end")
    p.add_argument("--loop", action="store_true", help="demo: play the scenarios again and again")


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("run", cmd_run, "run the kiosk with the configured devices: the fullscreen Qt app, or --headless")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0 = forever)")
    p.add_argument("--headless", action="store_true", help="no window: decisions on stdout (also the fallback without a display)")
    p.add_argument("--display-wait", type=float, default=0, metavar="SECONDS",
                   help="wait this long for the display before running headless, then keep looking for it and exit 0 "
                        "once a window can open, for systemd to restart the kiosk into it (the unit: 90; default 0)")
    p.add_argument("--display-recheck", type=float, default=30, metavar="SECONDS",
                   help="with --display-wait: how often a headless kiosk asks again whether a window can open (30)")
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
    p.add_argument("--journey", action="store_true",
                   help="instead: the operator's journey by taps (PIN, a resident by the screen keyboard, a pass issued, "
                        "printed and revoked, a policy, the log, a restart), a screenshot per step, on the current display")

    add("doctor", cmd_doctor, "check camera, microphone, speaker, models, TensorRT, gate, fonts, disk")

    p = add("demo", cmd_demo, "play the bundled scenarios through the real pipeline")
    p.add_argument("--headless", action="store_true", help="no window: print the timeline, write video + report")
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--models-from", help="install third-party models from this folder first")
    p.add_argument("--scenario", action="append", help="play only this scenario (repeatable)")
    p.add_argument("--repeat", type=int, default=1, help="play every scenario this many times")
    p.add_argument("--duration", type=float, default=0, help="window: close after this many seconds (0 = when played)")
    window_options(p)
