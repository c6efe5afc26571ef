"""``dabai-kiosk detect IMAGE…``: faces with box, mask class and confidence; ``dabai-kiosk cameras``: the
cameras present and what can open a CSI sensor here.

Each returns a process exit code and prints to stdout (results) / stderr (problems).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from kiosk.cli.common import Add, home_of
from kiosk.config import load_config
from kiosk.models.catalog import DEFAULT_FACE_MODEL, ModelNotInstalled

MASK_MODEL_FILE = "mask_classifier.onnx"


def engines_dir() -> str:
    """``$DABAI_ENGINES`` or the repository's ``engines/`` folder."""
    env = os.environ.get("DABAI_ENGINES")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "engines")


def default_mask_model() -> str:
    return os.path.join(engines_dir(), MASK_MODEL_FILE)


def _err(msg: str) -> None:
    print("error: " + msg, file=sys.stderr)


def build_detector(models_dir: str, backend: str = "auto", face_model: Optional[str] = None,
                   mask_model: Optional[str] = None):  # type: ignore[no-untyped-def]
    """The kiosk's MaskDetector; ``face_model``: a catalogue name (installed in ``models_dir``) or a file
    path, with the box correction of its JSON sidecar (else learned); ``mask_model``: a file, empty =
    the one that goes with the face model (:mod:`kiosk.models.selection`). Raises ModelNotInstalled / ModelError."""
    from kiosk.models.selection import detector_files
    from kiosk.vision.mask import MaskDetector

    face, mask, correction = detector_files(face_model or DEFAULT_FACE_MODEL, mask_model or "", models_dir)
    return MaskDetector(face, mask, backend, box_correction=correction)


def cmd_detect(images: List[str], json_out: bool, models_dir: str, backend: str = "auto",
               face_model: Optional[str] = None, mask_model: Optional[str] = None) -> int:
    """Faces with mask class per image. Exit 0 when every image was read, 1 when some could
    not be, 2 when the models cannot be loaded."""
    import cv2
    import numpy as np

    from kiosk.inference import BackendUnavailable, ModelError

    try:
        det = build_detector(models_dir, backend, face_model, mask_model)
    except (ModelNotInstalled, ModelError, BackendUnavailable, ValueError) as exc:
        _err(str(exc))
        return 2
    rc = 0
    for path in images:
        rec = {"image": path}  # type: dict
        try:
            data = np.fromfile(path, dtype=np.uint8) if os.path.isfile(path) else None
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
            if img is None:
                raise ValueError("not found" if data is None else "unreadable or corrupt image")
            if img.ndim == 3 and img.shape[2] == 4:
                img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
            rec["faces"] = [
                {
                    "box": list(d.box),
                    "class": d.mask.value,
                    "confidence": round(d.confidence, 4),
                    "face_score": round(d.face_score, 4),
                }
                for d in det.detect(img)
            ]
        except Exception as exc:  # one bad file never stops the others
            rec = {"image": path, "error": "{}".format(exc) or type(exc).__name__}
            rc = 1
        if json_out:
            print(json.dumps(rec, ensure_ascii=False), flush=True)
        elif "error" in rec:
            print("{}: error: {}".format(path, rec["error"]), flush=True)
        else:
            print("{}: {} face(s)".format(path, len(rec["faces"])))
            for f in rec["faces"]:
                print("  {:<22} {:.2f}  box={} face_score={:.2f}".format(f["class"], f["confidence"], f["box"], f["face_score"]))
    return rc


def cmd_detect_args(args: argparse.Namespace) -> int:
    config = load_config(home_of(args).config)
    return cmd_detect(args.images, args.json, str(home_of(args).models), args.backend or config.vision.backend,
                      config.vision.face_model, config.vision.mask_model)


def cmd_cameras(args: argparse.Namespace) -> int:
    """The cameras present (nothing is opened), what camera.source is, and which CSI paths exist here."""
    from kiosk.vision.cameras import list_cameras
    from kiosk.vision.sources import jetson_utils_module, opencv_has_gstreamer

    cameras = list_cameras()
    csi = {"jetson_utils": jetson_utils_module() is not None, "opencv_gstreamer": opencv_has_gstreamer()}
    try:
        configured = load_config(home_of(args).config).camera.source
    except Exception as exc:  # a broken config is doctor's news; the list is still useful
        configured = "(config unreadable: {})".format(exc)
    if args.json:
        print(json.dumps({"cameras": [dict(spec=c.spec, name=c.name, node=c.node, kind=c.kind, note=c.note)
                                      for c in cameras], "csi": csi, "configured": configured}, ensure_ascii=False))
        return 0
    for camera in cameras:
        print(camera.label)
    if not cameras:
        print("no cameras found (no /dev/video* here)")
    print("camera.source = {}".format(configured))
    print("csi:// through jetson-utils: {}; through OpenCV with GStreamer: {}".format(
        "yes" if csi["jetson_utils"] else "no", "yes" if csi["opencv_gstreamer"] else "no"))
    return 0


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("detect", cmd_detect_args, "faces with box, mask class and confidence")
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backend", help="inference backend (default: vision.backend)")
    p = add("cameras", cmd_cameras, "the cameras present, to choose camera.source (nothing is opened)")
    p.add_argument("--json", action="store_true")
