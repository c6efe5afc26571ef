"""What every command module of ``dabai-kiosk`` shares: the data home, the store, JSON output, user errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Optional

from kiosk.config import Home, resolve_home

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = REPO.parent / "shared" / "models"
SHARED_DATA = REPO.parent / "shared" / "data" / "facemask"
SHARED_PEERS = REPO.parent / "shared" / "peers"  # other projects' models, for side-by-side benchmarks only

# add(name, func, help) -> the subcommand's parser: how each command module registers itself
Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


class UserError(Exception):
    """A problem the person running the command can fix; printed without a traceback."""


def home_of(args: argparse.Namespace) -> Home:
    return resolve_home(args.home)


def open_store_of(args: argparse.Namespace) -> Any:
    from kiosk.runtime.assemble import open_store

    return open_store(home_of(args))


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


def models_from(args: argparse.Namespace) -> Optional[Path]:
    """Where the demo installs its third-party models from: --models-from, the home, or ../shared."""
    if getattr(args, "models_from", None):
        return Path(args.models_from)
    home_models = home_of(args).models
    if home_models.is_dir() and any(home_models.iterdir()):
        return home_models
    if SHARED_MODELS.is_dir():
        return SHARED_MODELS
    return None
