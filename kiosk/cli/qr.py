"""``dabai-kiosk qr decode IMAGE…`` and ``dabai-kiosk bench qr``: command bodies (argparse wiring lives in cli)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List

from kiosk.cli.common import Add


def _read_image(path: str):  # -> Optional[np.ndarray]; raises ValueError with a reason
    import cv2
    import numpy as np

    if not os.path.exists(path):
        raise ValueError("no such file")
    if os.path.isdir(path):
        raise ValueError("is a directory")
    with open(path, "rb") as f:
        data = f.read(64 * 1024 * 1024 + 1)
    if len(data) > 64 * 1024 * 1024:
        raise ValueError("file too large (> 64 MiB)")
    if not data:
        raise ValueError("empty file")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ValueError("not a readable image")
    return img


def cmd_qr_decode(images: List[str]) -> int:
    """Print one JSON line per image: ``{"image": path, "codes": [...]}`` (plus ``"error"`` when unreadable).

    Returns 0 when every image was read (codes found or not), 1 when any image could not be read.
    """
    from kiosk.vision.qr import decode_qr

    rc = 0
    for path in images:
        rec: dict = {"image": path, "codes": []}
        try:
            img = _read_image(path)
            rec["codes"] = decode_qr(img)
        except Exception as e:  # one bad file never stops the others
            rec["error"] = str(e) or type(e).__name__
            rc = 1
        sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return rc


def cmd_bench_qr(n: int = 300, seed: int = 0, json_out: bool = False) -> int:
    """Run the QR benchmark on ``dabai-qr-photos-v1`` and print the figures (JSON with ``json_out``)."""
    from kiosk.bench.qr_photos import run_qr_bench

    r = run_qr_bench(n=n, seed=seed)
    if json_out:
        print(json.dumps(r, indent=2))
        return 0
    p, s, st = r["plain_pyzbar"], r["kiosk_single_frame"], r["kiosk_stream"]
    print("set %s  n=%d  seed=%d  frames/sample=%d" % (r["set"], r["n"], r["seed"], r["frames_per_sample"]))
    print("plain pyzbar, one frame : rate %.3f  p50 %.1f ms  wrong %d" % (p["rate"], p["p50_ms"], p["wrong_reads"]))
    print("kiosk decode_qr, 1 frame: rate %.3f  p50 %.1f ms  p95 %.1f ms  wrong %d"
          % (s["rate"], s["p50_ms"], s["p95_ms"], s["wrong_reads"]))
    print("kiosk QrReader, stream  : rate %.3f  frames-to-decode p50 %.0f  frame p50 %.1f ms  p95 %.1f ms  wrong %d"
          % (st["rate"], st["frames_to_decode_p50"], st["frame_p50_ms"], st["frame_p95_ms"], st["wrong_reads"]))
    print("frame with no code      : p50 %.1f ms  p95 %.1f ms  false reads %d"
          % (r["no_code_frame_p50_ms"], r["no_code_frame_p95_ms"], r["no_code_false_reads"]))
    print("%-14s %4s %6s %6s %6s" % ("category", "n", "plain", "single", "stream"))
    for c, v in r["by_category"].items():
        print("%-14s %4d %6.2f %6.2f %6.2f" % (c, v["n"], v["plain"], v["single"], v["stream"]))
    return 0


def cmd_qr(args: argparse.Namespace) -> int:
    return cmd_qr_decode(args.images)


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("qr", cmd_qr, "QR codes in images")
    qs = p.add_subparsers(dest="action", metavar="ACTION")
    qs.required = True
    a = qs.add_parser("decode", help="decode QR codes, one JSON line per image", parents=[common])
    a.add_argument("images", nargs="+")
