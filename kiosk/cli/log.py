"""``dabai-kiosk log list | export``: the access log."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kiosk.cli.common import Add, open_store_of, print_json


def cmd_log(args: argparse.Namespace) -> int:
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


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
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
