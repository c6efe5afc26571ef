"""``dabai-kiosk residents …`` and ``dabai-kiosk pass …``: the resident registry and the signed passes."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from kiosk.cli.common import Add, UserError, home_of, open_store_of, print_json
from kiosk.config import Home, load_config


def cmd_residents(args: argparse.Namespace) -> int:
    store = open_store_of(args)
    try:
        reg = store.registry
        if args.action == "add":
            r = reg.add(args.name, args.unit)
            print("added resident {}: {} ({})".format(r.id, r.name, r.unit))
        elif args.action == "list":
            rows = reg.list()
            if args.json:
                for r in rows:
                    print_json(r.__dict__)
            else:
                print("{:>4}  {:<12} {:<10} {}".format("id", "name", "unit", "status"))
                for r in rows:
                    print("{:>4}  {:<12} {:<10} {}".format(r.id, r.name, r.unit, r.status))
        elif args.action == "revoke":
            r = reg.revoke(args.resident)
            print("revoked resident {}: {}; their passes no longer open the gate".format(r.id, r.name))
        elif args.action == "reinstate":
            r = reg.reinstate(args.resident)
            print("reinstated resident {}: {}".format(r.id, r.name))
    finally:
        store.close()
    return 0


def cmd_pass(args: argparse.Namespace) -> int:
    from kiosk.store.passes import issue_pass, load_or_create_private_key

    home = home_of(args)
    store = open_store_of(args)
    try:
        if args.action == "issue":
            config = load_config(home.config)
            resident = store.registry.resolve(args.resident)
            key = load_or_create_private_key(home.private_key, home.public_key)
            days = args.days if args.days is not None else config.community.pass_days
            serial, token = issue_pass(store.registry, key, resident.id, days, time.time())
            if args.out:
                from kiosk.vision.qr import save_qr_png

                save_qr_png(token, args.out, caption="{} {} #{}".format(config.community.name, resident.unit, serial))
            expires = time.strftime("%Y-%m-%d", time.localtime(time.time() + days * 86400))
            print("pass {} for {} ({}), valid until {}{}".format(
                serial, resident.name, resident.unit, expires, ": " + args.out if args.out else ""))
            if args.print_token or not args.out:
                print(token)
        elif args.action == "verify":
            return _verify(args, home, store)
        elif args.action == "revoke":
            record = store.registry.revoke_pass(args.serial)
            print("revoked pass {} of resident {}".format(record.serial, record.resident_id))
    finally:
        store.close()
    return 0


def _verify(args: argparse.Namespace, home: Home, store: Any) -> int:
    from kiosk.runtime.assemble import pass_checker

    check = pass_checker(home, store.registry)
    payloads = [args.payload]
    if os.path.isfile(args.payload):
        import cv2

        from kiosk.vision.qr import decode_qr

        image = cv2.imread(args.payload, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise UserError("{} is not an image this kiosk can read".format(args.payload))
        payloads = decode_qr(image)
        if not payloads:
            result = {"valid": False, "reason": "no_code", "resident": None}
            print_json(result) if args.json else print("no QR code found in {}".format(args.payload))
            return 1
    status = 0
    for payload in payloads:
        c = check(payload)
        resident = None if c.resident_id is None else {"id": c.resident_id, "name": c.resident_name}
        result = {"valid": c.valid, "reason": c.reason, "resident": resident, "serial": c.serial}
        if args.json:
            print_json(result)
        else:
            print("{}: {}{}".format("VALID" if c.valid else "INVALID", c.reason,
                                    " ({})".format(c.resident_name) if c.resident_name else ""))
        status = status or (0 if c.valid else 1)
    return status


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("residents", cmd_residents, "the resident registry")
    rs = p.add_subparsers(dest="action", metavar="ACTION")
    rs.required = True
    a = rs.add_parser("add", help="register a resident", parents=[common])
    a.add_argument("name")
    a.add_argument("--unit", required=True, help="building-room, e.g. 3-201")
    a = rs.add_parser("list", help="list residents", parents=[common])
    a.add_argument("--json", action="store_true")
    for verb in ("revoke", "reinstate"):
        a = rs.add_parser(verb, help="{} a resident (id or unique name)".format(verb), parents=[common])
        a.add_argument("resident")

    p = add("pass", cmd_pass, "issue, verify and revoke pass QR codes")
    ps = p.add_subparsers(dest="action", metavar="ACTION")
    ps.required = True
    a = ps.add_parser("issue", help="issue a signed pass for a resident", parents=[common])
    a.add_argument("resident", help="resident id or unique name")
    a.add_argument("--out", help="write the QR code as a PNG")
    a.add_argument("--days", type=float, help="validity in days (default: community.pass_days)")
    a.add_argument("--print-token", action="store_true", help="also print the payload")
    a = ps.add_parser("verify", help="verify a payload or the QR code in an image", parents=[common])
    a.add_argument("payload", help="the QR payload text, or an image file")
    a.add_argument("--json", action="store_true")
    a = ps.add_parser("revoke", help="revoke one pass by serial", parents=[common])
    a.add_argument("serial", type=int)
