"""``dabai-kiosk log list | export | verify | acknowledge``: the access log, and whether it is whole."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kiosk.cli.common import Add, home_of, open_store_of, print_json
from kiosk.runtime import exitcodes


def cmd_log(args: argparse.Namespace) -> int:
    if args.action == "verify":
        return cmd_log_verify(args)
    if args.action == "acknowledge":
        return cmd_log_acknowledge(args)
    store = open_store_of(args)
    try:
        if args.action == "list":
            rows = store.access_log.list(limit=args.limit, outcome=args.outcome)
            if args.json:
                for r in rows:
                    print_json(r)
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


def cmd_log_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the chain, its signed checkpoints and the remembered head agree; 1 naming the first bad record."""
    from kiosk.store.chain import load_kiosk_public_key

    home = home_of(args)
    store = open_store_of(args)
    try:
        pub_path = home.keys / "kiosk.pub"
        public_key = load_kiosk_public_key(pub_path) if pub_path.exists() else None
        verdict = store.access_log.verify(public_key)
    finally:
        store.close()
    if public_key is None and verdict.records:
        verdict.ok = False
        verdict.problems.insert(0, "no kiosk key at {}: the checkpoints cannot be checked".format(pub_path))
    if args.json:
        print_json(verdict.to_dict())
    else:
        for problem in verdict.problems:
            print("BAD: {}".format(problem))
        for note in verdict.notes:
            print("note: {}".format(note))
        if verdict.ok:
            print("ok: {} record(s), chain intact, last signed checkpoint at record {}".format(
                verdict.records, verdict.last_checkpoint))
        elif verdict.first_bad is not None:
            print("first bad record: {}".format(verdict.first_bad))
    return exitcodes.OK if verdict.ok else exitcodes.FAILED


def cmd_log_acknowledge(args: argparse.Namespace) -> int:
    from kiosk.runtime.assemble import open_store

    store = open_store(home_of(args), writer=True)
    try:
        alarm = store.access_log.alarm
        if not store.access_log.acknowledge(args.by):
            print("no access-log alarm to acknowledge")
            return exitcodes.OK
    finally:
        saved = store.close()
    print("acknowledged: {} (recorded in the log; the gate may open again)".format(alarm.get("text") if alarm else ""))
    return exitcodes.OK if saved else exitcodes.UNSAVED


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("log", cmd_log, "the access log")
    ls = p.add_subparsers(dest="action", metavar="ACTION")
    ls.required = True
    a = ls.add_parser("list", help="latest decisions", parents=[common])
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--outcome", choices=("granted", "denied", "abandoned", "operator", "alarm"),
                   help="only these records (operator: the operator screen's actions; alarm: lost records)")
    a.add_argument("--json", action="store_true")
    a = ls.add_parser("export", help="export every record", parents=[common])
    a.add_argument("--csv", action="store_true", help="CSV (the only format so far)")
    a.add_argument("--out", help="file to write (default: stdout)")
    a = ls.add_parser("verify", help="check the hash chain and signed checkpoints; non-zero naming the first bad "
                      "record", parents=[common])
    a.add_argument("--json", action="store_true")
    a = ls.add_parser("acknowledge", help="acknowledge an access-log alarm (records lost): the gate may open again",
                      parents=[common])
    a.add_argument("--by", default="operator", help="who acknowledges (recorded in the log)")
