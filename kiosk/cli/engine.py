"""``dabai-kiosk engine build``: build (or confirm up to date) the TensorRT engines of the kiosk's models.

A pure function returning the exit code (argparse wiring lives in kiosk.cli): 0 when every engine is
built or up to date, 1 when some model failed, 2 when TensorRT is not available on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from kiosk.cli.common import Add, home_of


def default_models(models_dir: Optional[str] = None) -> List[str]:
    """The configured face detector (``vision.face_model``: a catalogue name, installed into the data
    home's models folder, or a file) and its mask classifier (``vision.mask_model``)."""
    from kiosk.config import Config, load_config, resolve_home
    from kiosk.models.catalog import entry
    from kiosk.models.selection import is_catalogue_name, mask_model_file, resolve_path

    home = resolve_home()
    folder = models_dir or str(home.models)
    try:
        vision = load_config(home.config).vision
    except Exception:  # a broken config is reported by the commands that need it; build the defaults
        vision = Config().vision
    if is_catalogue_name(vision.face_model):
        face = os.path.join(folder, entry(vision.face_model).file_name)
    else:
        face = str(resolve_path(vision.face_model))
    return [face, mask_model_file(vision.mask_model, face if os.path.isfile(face) else None)]


def cmd_engine_build(models: List[str], cache_dir: str, fp16: bool = True, models_dir: Optional[str] = None) -> int:
    """One line per model: ``<model>: <status> <engine path> key <key16>``."""
    from kiosk.inference import tensorrt_backend as trtb

    if not trtb.available():
        print("TensorRT is not available here ({}); engines are built on the Jetson with "
              "`dabai-kiosk engine build`".format(trtb.UNAVAILABLE_REASON), file=sys.stderr)
        return 2
    cache_dir = cache_dir or trtb.default_cache_dir()
    rc = 0
    for model in list(models) or default_models(models_dir):
        if not os.path.isfile(model):
            print("error: {}: not found (install the face model with `dabai-kiosk models fetch`)".format(model),
                  file=sys.stderr)
            rc = 1
            continue
        try:
            info = trtb.ensure_engine(model, cache_dir, fp16=fp16)
        except Exception as exc:  # any failure (a CUDA error, an API difference, no memory) is this model's, not the command's
            print("error: {}: {}: {}".format(model, type(exc).__name__, exc), file=sys.stderr)
            rc = 1
            continue
        status = "up to date" if info.status == "cached" else info.status
        print("{}: {} {} key {}".format(model, status, info.path, info.key[:16]))
    return rc


def cmd_engine(args: argparse.Namespace) -> int:
    home = home_of(args)
    return cmd_engine_build(args.models, str(home.cache / "engines"), fp16=not args.fp32, models_dir=str(home.models))


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("engine", cmd_engine, "TensorRT engines for this device")
    es = p.add_subparsers(dest="action", metavar="ACTION")
    es.required = True
    a = es.add_parser("build", help="build (or check) the TensorRT engines from the ONNX models", parents=[common])
    a.add_argument("models", nargs="*", help="ONNX files (default: the face model and the mask classifier)")
    a.add_argument("--fp32", action="store_true", help="full precision instead of FP16")
