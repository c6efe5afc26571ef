"""Vision and model commands of ``dabai-kiosk`` as pure functions (argparse wiring lives in kiosk.cli).

Each returns a process exit code and prints to stdout (results) / stderr (problems).
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional, Sequence

from kiosk.models.catalog import (
    CATALOG,
    DEFAULT_FACE_MODEL,
    ModelInstallError,
    ModelNotInstalled,
    fetch,
    list_models,
    verify,
)

MASK_MODEL_FILE = "mask_classifier.onnx"


def engines_dir() -> str:
    """``$DABAI_ENGINES`` or the repository's ``engines/`` folder."""
    env = os.environ.get("DABAI_ENGINES")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engines")


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


def cmd_models_fetch(names: Sequence[str], from_dir: Optional[str], models_dir: str) -> int:
    """Install models (default: the kiosk's face detector). Exit 1 on any failure."""
    names = list(names) or [DEFAULT_FACE_MODEL]
    if names == ["all"]:
        names = list(CATALOG)
    rc = 0
    for n in names:
        try:
            path = fetch([n], models_dir, from_dir)[n]
            print("{}: installed {} (sha256 ok)".format(n, path))
        except ModelInstallError as exc:
            _err(str(exc))
            rc = 1
    return rc


def cmd_models_list(models_dir: str) -> int:
    for r in list_models(models_dir):
        mark = "installed" if r["installed"] else "-"
        print("{:<19} {:<10} {:<36} {}".format(r["name"], mark, r["file"], r["license"]))
    print("(models folder: {}; default face model: {})".format(models_dir, DEFAULT_FACE_MODEL))
    return 0


def cmd_models_verify(models_dir: str, required: Optional[str] = DEFAULT_FACE_MODEL) -> int:
    """Exit 0 when every installed model is intact and the ``required`` catalogue model (the configured
    face model when it is a catalogue name; None when it is a file of the repository) is installed."""
    res = verify(models_dir)
    rc = 0
    for name, state in res.items():
        print("{:<19} {}".format(name, state))
        if state.startswith("corrupt"):
            rc = 1
    if required and res.get(required) == "missing":
        _err(str(ModelNotInstalled(required, models_dir)))
        rc = 1
    return rc


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
