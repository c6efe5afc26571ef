"""``dabai-kiosk operator set-pin | reset-lock``: the operator PIN from a shell (no display needed).

Whoever has a shell on the kiosk is trusted: ``set-pin`` also clears the wrong-try count and the lock,
so that a forgotten PIN can be replaced and used at once."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, Callable

from kiosk.config import resolve_home
from kiosk.ui.operator.pinstore import PIN_RULE, PinStore, validate_pin


def cmd_operator(args: argparse.Namespace) -> int:
    store = PinStore.in_home(resolve_home(args.home))
    if args.action == "reset-lock":
        store.reset_lock()
        print("operator screen unlocked ({})".format(store.lockout_path))
        if not store.is_set():
            print("no operator PIN is set yet: dabai-kiosk operator set-pin")
        return 0
    had_pin = store.is_set()
    pin = args.pin
    if pin is None:
        if not sys.stdin.isatty():  # a script: the PIN on one line of standard input
            pin = sys.stdin.readline().strip()
        else:
            pin = getpass.getpass("new operator PIN (4-8 digits): ")
            if getpass.getpass("again: ") != pin:
                print("dabai-kiosk: the two PINs differ; nothing changed", file=sys.stderr)
                return 2
    try:
        store.set_pin(validate_pin(pin))
    except ValueError:
        print("dabai-kiosk: {}; nothing changed".format(PIN_RULE), file=sys.stderr)
        return 2
    store.reset_lock()
    print("operator PIN {} ({}); wrong tries and lock cleared".format("changed" if had_pin else "set", store.path))
    return 0


def add_parsers(add: Callable[..., Any], common: argparse.ArgumentParser) -> None:
    """Register ``operator`` with the CLI's ``add(name, func, help)``."""
    p = add("operator", cmd_operator, "the operator screen's PIN")
    ops = p.add_subparsers(dest="action", metavar="ACTION")
    ops.required = True
    a = ops.add_parser("set-pin", help="set or change the operator PIN (asked twice; or --pin, or one line on stdin)",
                       parents=[common])
    a.add_argument("--pin", help="the new PIN (visible in the shell history: prefer the prompt)")
    ops.add_parser("reset-lock", help="clear the lock after too many wrong PINs", parents=[common])

