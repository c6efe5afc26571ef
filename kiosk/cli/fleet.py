"""``dabai-kiosk fleet init | add-kiosk | broker``: the broker of a community of gates (issue 14), on the office."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from kiosk.cli.common import UserError
from kiosk.fleet.broker import DEFAULT_PORT, FleetError, add_member, init_fleet, load_fleet

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if os.path.exists(p)), None)
    if found is None:
        raise UserError("mosquitto is not installed: apt-get install mosquitto")
    return found


def cmd_fleet(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    try:
        if args.action == "init":
            fleet = init_fleet(folder, args.community, args.host, args.port, args.server_name or (), args.bind,
                               args.broker_user)
            print("fleet {} in {}: CA, broker certificate for {} and the office's certificate".format(
                fleet.community, folder, fleet.host))
            print("start the broker: dabai-kiosk fleet broker --dir {}".format(folder))
            print("enrol each gate: dabai-kiosk fleet add-kiosk NAME --dir {}".format(folder))
        elif args.action == "add-kiosk":
            bundle = add_member(folder, args.name)
            print("kiosk {} enrolled: copy {} to the kiosk (its key is in it; keep it private)".format(args.name, bundle))
        else:  # broker: run Mosquitto in the foreground with the fleet's configuration
            load_fleet(folder)
            conf = folder / "broker" / "mosquitto.conf"
            binary = mosquitto_binary()
            os.execv(binary, [binary, "-c", str(conf)])
    except FleetError as exc:
        raise UserError(str(exc)) from None
    return 0


def add_parsers(add: Callable[..., Any], common: argparse.ArgumentParser) -> None:
    p = add("fleet", cmd_fleet, "a community of gates: the broker's CA, certificates, configuration and ACL")
    ops = p.add_subparsers(dest="action", metavar="ACTION")
    ops.required = True
    a = ops.add_parser("init", help="make the fleet's CA, the broker's TLS configuration and the office's certificate",
                       parents=[common])
    a.add_argument("--dir", default="fleet", help="the fleet folder, on the office machine (default ./fleet)")
    a.add_argument("--community", required=True, help="the community's name: letters, digits, - and _")
    a.add_argument("--host", default="localhost", help="the broker's host name or address, as kiosks reach it")
    a.add_argument("--server-name", action="append", help="another name or address of the broker (repeatable)")
    a.add_argument("--port", type=int, default=DEFAULT_PORT, help="the broker's TLS port (default 8883)")
    a.add_argument("--bind", default="", help="listen on this address only (default: all)")
    a.add_argument("--broker-user", default="", help="the account the broker runs as (Debian's service: mosquitto)")
    a = ops.add_parser("add-kiosk", help="enrol one kiosk: its certificate and its ACL entry", parents=[common])
    a.add_argument("name", help="the kiosk's name: letters, digits, - and _")
    a.add_argument("--dir", default="fleet", help="the fleet folder (default ./fleet)")
    a = ops.add_parser("broker", help="run Mosquitto with the fleet's configuration (foreground)", parents=[common])
    a.add_argument("--dir", default="fleet", help="the fleet folder (default ./fleet)")
