"""``dabai-kiosk models fetch | list | verify``: third-party models, installed with a pinned sha256."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from kiosk.cli.common import Add, home_of
from kiosk.config import load_config
from kiosk.models.catalog import CATALOG, DEFAULT_FACE_MODEL, ModelInstallError, ModelNotInstalled, fetch, list_models, verify


def _err(msg: str) -> None:
    print("error: " + msg, file=sys.stderr)


def cmd_models_fetch(names: Sequence[str], from_dir: Optional[str], models_dir: str) -> int:
    """Install models (default: the kiosk's face detector). Exit 1 on any failure."""
    names = list(names) or [DEFAULT_FACE_MODEL]
    if names == ["all"]:
        names = list(CATALOG)
    rc = 0
    for n in names:
        try:
            path = fetch([n], models_dir, from_dir)[n]
            print("{}: installed {} (sha256 ok)".format(n, path))
        except ModelInstallError as exc:
            _err(str(exc))
            rc = 1
    return rc


def cmd_models_list(models_dir: str) -> int:
    for r in list_models(models_dir):
        mark = "installed" if r["installed"] else "-"
        print("{:<19} {:<10} {:<36} {}".format(r["name"], mark, r["file"], r["license"]))
    print("(models folder: {}; default face model: {})".format(models_dir, DEFAULT_FACE_MODEL))
    return 0


def cmd_models_verify(models_dir: str, required: Optional[str] = DEFAULT_FACE_MODEL) -> int:
    """Exit 0 when every installed model is intact and the ``required`` catalogue model (the configured
    face model when it is a catalogue name; None when it is a file of the repository) is installed."""
    res = verify(models_dir)
    rc = 0
    for name, state in res.items():
        print("{:<19} {}".format(name, state))
        if state.startswith("corrupt"):
            rc = 1
    if required and res.get(required) == "missing":
        _err(str(ModelNotInstalled(required, models_dir)))
        rc = 1
    return rc


def cmd_models(args: argparse.Namespace) -> int:
    models = str(home_of(args).models)
    if args.action == "fetch":
        return cmd_models_fetch(args.names, args.source, models)
    if args.action == "list":
        return cmd_models_list(models)
    from kiosk.models.selection import is_catalogue_name

    face = load_config(home_of(args).config).vision.face_model
    return cmd_models_verify(models, face if is_catalogue_name(face) else None)


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("models", cmd_models, "install and check third-party models")
    ms = p.add_subparsers(dest="action", metavar="ACTION")
    ms.required = True
    a = ms.add_parser("fetch", help="install models (official URL + sha256, or --from DIR)", parents=[common])
    a.add_argument("names", nargs="*", help="model names (default: all the kiosk needs)")
    a.add_argument("--from", dest="source", help="a local folder holding the files (offline install)")
    ms.add_parser("list", help="installed and known models", parents=[common])
    ms.add_parser("verify", help="check installed files against their sha256", parents=[common])
