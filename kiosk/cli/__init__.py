"""``dabai-kiosk``: the kiosk and its operator commands, one module per command group.

Every command takes ``--home DIR`` (or ``$DABAI_HOME``) to choose the data home. Errors are
printed as one plain sentence on stderr with exit status 2; nothing here prints a traceback
for a problem a person can fix.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

from kiosk import __version__
from kiosk.cli import (
    bench,
    config,
    engine,
    evaluate,
    fleet,
    gate,
    listen,
    log,
    models,
    operator,
    qr,
    registry,
    run,
    speech,
    train,
    vision,
)
from kiosk.cli.common import UserError
from kiosk.config import ConfigError
from kiosk.runtime import exitcodes
from kiosk.store.db import StoreError

# The order of ``dabai-kiosk --help``.
GROUPS = (run, gate, config, registry, log, operator, fleet, qr, vision, models, evaluate, engine, listen, speech, bench,
          train)


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

    for group in GROUPS:
        group.add_parsers(add, common)
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
    except StoreError as exc:
        print("dabai-kiosk: {}".format(exc), file=sys.stderr)
        return exitcodes.STORAGE
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

