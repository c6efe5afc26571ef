"""``dabai-kiosk residents …``, ``pass …`` and ``revocations …``: the resident registry, the signed passes
and the signed revocation list."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Optional

from kiosk.cli.common import Add, UserError, home_of, open_store_of, print_json
from kiosk.config import CommunityConfig, Home, load_config


def _on_list(revocations: Optional[Any]) -> str:
    return "" if revocations is None else " (revocation list version {})".format(revocations.version)


def cmd_residents(args: argparse.Namespace) -> int:
    from kiosk.store.revocations import next_free_ids, reinstate_resident, revoke_resident

    home = home_of(args)
    store = open_store_of(args)
    try:
        reg = store.registry
        if args.action == "add":
            r = reg.add(args.name, args.unit, min_id=next_free_ids(home)[0])
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
            r, revocations = revoke_resident(home, reg, args.resident)
            print("revoked resident {}: {}; their passes no longer open the gate{}".format(
                r.id, r.name, _on_list(revocations)))
        elif args.action == "reinstate":
            r, revocations = reinstate_resident(home, reg, args.resident)
            print("reinstated resident {}: {}{}".format(r.id, r.name, _on_list(revocations)))
    finally:
        store.close()
    return 0


def cmd_pass(args: argparse.Namespace) -> int:
    from kiosk.store.passes import issue_pass, load_or_create_private_key, pass_window
    from kiosk.store.revocations import next_free_ids, revoke_pass

    home = home_of(args)
    store = open_store_of(args)
    try:
        if args.action == "issue":
            config = load_config(home.config)
            resident = store.registry.resolve(args.resident)
            days = args.days if args.days is not None else config.community.pass_days
            pass_window(days, time.time())  # a bad --days stops here, before a key or a pass is written
            key = load_or_create_private_key(home.private_key, home.public_key)
            serial, token = issue_pass(store.registry, key, resident.id, days, time.time(),
                                       min_serial=next_free_ids(home)[1])
            if args.out:
                from kiosk.store.passes import pass_card_lines
                from kiosk.vision.qr import save_qr_png

                issued = store.registry.get_pass(serial)
                save_qr_png(token, args.out, caption=pass_card_lines(
                    config.community.name, resident.name, resident.unit, serial, issued.expires_at if issued else 0))
            record = store.registry.get_pass(serial)
            expires = time.strftime("%Y-%m-%d", time.localtime(record.expires_at if record else 0))
            print("pass {} for {} ({}), valid until {}{}".format(
                serial, resident.name, resident.unit, expires, ": " + args.out if args.out else ""))
            if args.print_token or not args.out:
                print(token)
        elif args.action == "verify":
            return _verify(args, home, store)
        elif args.action == "revoke":
            record, revocations = revoke_pass(home, store.registry, args.serial)
            print("revoked pass {} of resident {}{}".format(record.serial, record.resident_id, _on_list(revocations)))
    finally:
        store.close()
    return 0


def cmd_revocations(args: argparse.Namespace) -> int:
    from kiosk.store.passes import load_public_key
    from kiosk.store.revocations import RevocationError, apply_list, load_list

    home = home_of(args)
    public_key = load_public_key(home.public_key)
    if args.action == "apply":
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise UserError("cannot read {}: {}".format(args.file, exc)) from None
        revocations = apply_list(home, data, public_key)
        print("revocation list version {} installed: {} passes, {} residents revoked".format(
            revocations.version, len(revocations.passes), len(revocations.residents)))
        return 0
    try:
        revocations = load_list(home, public_key)
    except RevocationError as exc:
        result = {"sound": False, "problem": str(exc), "file": str(home.revocations)}
        print_json(result) if args.json else print("UNSURE, every pass is refused: {}".format(exc))
        return 1
    result = {"sound": True, "version": revocations.version, "issued_at": revocations.issued_at,
              "passes": sorted(revocations.passes), "residents": sorted(revocations.residents),
              "file": str(home.revocations)}
    if args.json:
        print_json(result)
    elif revocations.version == 0:
        print("no revocation list yet (nothing revoked beyond the database)")
    else:
        print("revocation list version {}, signed {}: passes {}; residents {}".format(
            revocations.version, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(revocations.issued_at)),
            sorted(revocations.passes) or "none", sorted(revocations.residents) or "none"))
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
    days = {f.name: f for f in dataclasses.fields(CommunityConfig)}["pass_days"].metadata  # as kiosk.store.passes
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
    a.add_argument("--days", type=float, help="validity in days, more than 0 and at most {} "
                   "(default: community.pass_days)".format(days["max"]))
    a.add_argument("--print-token", action="store_true", help="also print the payload")
    a = ps.add_parser("verify", help="verify a payload or the QR code in an image", parents=[common])
    a.add_argument("payload", help="the QR payload text, or an image file")
    a.add_argument("--json", action="store_true")
    a = ps.add_parser("revoke", help="revoke one pass by serial", parents=[common])
    a.add_argument("serial", type=int)

    p = add("revocations", cmd_revocations, "the signed revocation list that outlives the database")
    vs = p.add_subparsers(dest="action", metavar="ACTION")
    vs.required = True
    a = vs.add_parser("show", help="the list in force, or why the kiosk refuses every pass", parents=[common])
    a.add_argument("--json", action="store_true")
    a = vs.add_parser("apply", help="install a signed list from the issuing machine (never an older one)",
                      parents=[common])
    a.add_argument("file", help="a revocations.json")
