"""``dabai-kiosk fleet init | add-kiosk | join | broker`` and ``dabai-kiosk office run | status | log verify |
rotate-key``: a community of gates kept in step through a broker (issue 14)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from kiosk.cli.common import UserError, home_of, print_json
from kiosk.fleet.broker import (
    DEFAULT_PORT,
    OFFICE,
    FleetError,
    add_member,
    find_mosquitto,
    init_fleet,
    load_fleet,
    pid_path,
    reload_broker,
)
from kiosk.fleet.link import join


def mosquitto_binary() -> str:
    found = find_mosquitto()
    if found is None:
        raise UserError("mosquitto is not installed: apt-get install mosquitto")
    return found




def cmd_fleet(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.action != "join" else Path(args.bundle)
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
            home = home_of(args)
            if home.public_key.exists():  # the community's public key travels with the bundle
                shutil.copy(str(home.public_key), str(bundle / "community.pub"))
            print("kiosk {} enrolled: copy {} to the kiosk and run `dabai-kiosk fleet join {}` there (its key is in it; "
                  "keep it private)".format(args.name, bundle, bundle.name))
            if reload_broker(folder):
                print("the running broker has read the new ACL")
            else:
                print("if a broker is running already, it must read the new ACL before it lets {} in: restart `fleet broker`, "
                      "or `systemctl reload mosquitto` for the system service".format(args.name))
        elif args.action == "join":
            name = join(home_of(args), folder)
            print("joined as kiosk {}: restart the kiosk (systemctl restart dabai-kiosk) to connect".format(name))
        else:  # broker: run Mosquitto in the foreground with the fleet's configuration
            load_fleet(folder)
            conf = folder / "broker" / "mosquitto.conf"
            binary = mosquitto_binary()
            pid_path(folder).write_text("{}\n".format(os.getpid()))  # exec keeps the pid: add-kiosk reloads it
            os.execv(binary, [binary, "-c", str(conf)])
    except FleetError as exc:
        raise UserError(str(exc)) from None
    return 0


def _office_bundle(args: argparse.Namespace) -> Path:
    if args.bundle:
        return Path(args.bundle)
    home = home_of(args)
    return home.fleet if (home.fleet / "fleet.json").exists() else Path("fleet") / "members" / OFFICE


def cmd_office(args: argparse.Namespace) -> int:
    from kiosk.fleet.office import Office, office_database, overview, rotate_key, verify_all

    home = home_of(args)
    try:
        if args.action == "run":
            office = Office(home, _office_bundle(args))
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            print("office of {}: publishing from {}, collecting into {}".format(
                office.fleet.community, home.root, office_database(home)), flush=True)
            office.run(stop)
            print_json({"office": "stopped", **office.stats()})
        elif args.action == "status":
            kiosks = overview(office_database(home), recent=args.recent)
            if args.json:
                print_json(kiosks)
            elif not kiosks:
                print("no gate has reported to this office yet (is `office run` running, and have gates joined?)")
            for k in [] if args.json else kiosks:
                silent = "never" if k["silent_s"] is None else "{:.0f} s ago".format(k["silent_s"])
                v = k["versions"]
                print("{:<16} last contact {:<12} lists: revocations {} registry {} policy {} key {}  records {} "
                      "(unbroken to {}){}".format(k["kiosk"], silent, v.get("revocations", "?"), v.get("registry", "?"),
                                                  v.get("policy", "?"), v.get("key", "?"), k["records"],
                                                  k["records_upto"],
                                                  "  refused {}".format(k["refused"]) if k["refused"] else ""))
                for r in k["recent"]:
                    print("    #{:<6} {} {:<9} {:<16} {}".format(r["seq"], time.strftime(
                        "%m-%d %H:%M:%S", time.localtime(r["ts"])), r["outcome"], r["reason"], r["resident_name"] or ""))
        elif args.action == "log":
            results = verify_all(office_database(home))
            if args.json:
                print_json(results)
            for r in [] if args.json else results:
                signed = ", signed to #{}".format(r["checkpoint"]) if r["checkpoint"] else ", no signed checkpoint yet"
                print("{:<16} {} records{}: {}".format(
                    r["kiosk"], r["records"], " ({} past a gap, not judged yet)".format(r["gaps"]) if r["gaps"] else "",
                    "chain ok" + signed if r["ok"] else "BAD{}: {}".format(
                        " at #{}".format(r["bad_seq"]) if r["bad_seq"] else "", r["why"])))
            return 0 if all(r["ok"] for r in results) else 1
        else:  # rotate-key
            done = rotate_key(home, args.grace_days)
            print("community key {} replaces {}; passes signed with the old key are honoured until {}; the running "
                  "office publishes it to every gate".format(done["new_key"], done["old_key"], time.strftime(
                      "%Y-%m-%d %H:%M", time.localtime(done["old_passes_until"]))))
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
    a = ops.add_parser("add-kiosk", help="enrol one kiosk: its certificate, its ACL entry and the community's public "
                                         "key (from --home, the office's data home)", parents=[common])
    a.add_argument("name", help="the kiosk's name: letters, digits, - and _")
    a.add_argument("--dir", default="fleet", help="the fleet folder (default ./fleet)")
    a = ops.add_parser("join", help="on a kiosk: install its bundle (from add-kiosk) in the data home", parents=[common])
    a.add_argument("bundle", help="the bundle folder fleet add-kiosk wrote (members/NAME)")
    a = ops.add_parser("broker", help="run Mosquitto with the fleet's configuration (foreground)", parents=[common])
    a.add_argument("--dir", default="fleet", help="the fleet folder (default ./fleet)")

    p = add("office", cmd_office, "the property office: publish lists to every gate, collect their logs")
    ops = p.add_subparsers(dest="action", metavar="ACTION")
    ops.required = True
    a = ops.add_parser("run", help="publish the signed lists and collect every gate's log (foreground)",
                       parents=[common])
    a.add_argument("--bundle", default="", help="the office's bundle (default: fleet/ of the data home, else "
                                                "./fleet/members/office)")
    a = ops.add_parser("status", help="every gate: last contact, list versions held, recent decisions",
                       parents=[common])
    a.add_argument("--recent", type=int, default=3, help="recent decisions shown per gate")
    a.add_argument("--json", action="store_true")
    a = ops.add_parser("log", help="log verify: check every gate's hash chain over what the office holds",
                       parents=[common])
    a.add_argument("verb", choices=("verify",))
    a.add_argument("--json", action="store_true")
    a = ops.add_parser("rotate-key", help="replace the community key; old passes honoured for --grace-days",
                       parents=[common])
    a.add_argument("--grace-days", type=float, default=30.0, help="days passes signed with the old key still open "
                                                                  "the gate (0: a key that leaked)")
