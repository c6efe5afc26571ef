"""``dabai-kiosk config show | check | defaults | set | path``."""

from __future__ import annotations

import argparse
from typing import Any

from kiosk.cli.common import Add, UserError, home_of
from kiosk.config import Config, ConfigError, load_config, render_toml, save_config
from kiosk.config import replace as config_replace


def cmd_config(args: argparse.Namespace) -> int:
    home = home_of(args)
    if args.action == "defaults":
        print(render_toml(Config()))
        return 0
    config = load_config(home.config)  # ConfigError → reported by main
    if args.action == "show":
        print(render_toml(config))
    elif args.action == "check":
        from kiosk.gate.settings import gate_notes, gate_problems

        problems = gate_problems(config.gate)  # each setting against the driver it names, on this machine
        if problems:
            raise ConfigError(str(home.config), problems)
        for note in gate_notes(config.gate):
            print("warning: {}".format(note))
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


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("config", cmd_config, "show, check or change the configuration")
    p.add_argument("action", choices=("show", "check", "defaults", "set", "path"))
    p.add_argument("key", nargs="?", help="SECTION.KEY for set")
    p.add_argument("value", nargs="?", help="value for set")
