#!/usr/bin/env python3
"""Close faces: one face filling a 1024x1024 photo (a resident leaning into the camera).

Builds a set of such portraits and counts how many the detector finds, with the coarse second
pass of :class:`kiosk.vision.faces.FaceDetector` (the default) and without it (``coarse_pass=False``,
the detector as it was before), for the two ways the project runs the detector:

* ``detect``: ``dabai-kiosk detect IMAGE`` (:func:`kiosk.cli.vision.build_detector`: the frame at its own size);
* ``live``: the kiosk's own path (:func:`kiosk.runtime.assemble.build_detector`: ``vision.detect_scale`` 0.5);
  ``live_640x480``: the same on the portraits as its camera gives them (shrunk to 480 px, the sides filled).

The portraits (nothing is written to disk unless ``--save DIR``):

* every face of ``<shared>/data/mask_wearing`` (public domain; not used to train any model here) and of the
  val/test split of ``<shared>/data/facemask`` at least ``--min-source`` px tall, cut out square so that
  its box fills 80-100 % of the frame (the fraction cycles through 0.80, 0.85, 0.90, 0.95, 1.00), upscaled to
  1024x1024; a face whose square does not fit in its photo is left out;
* the demo faces of ``assets/demo`` (scikit-image's public-domain astronaut photo, with a mask painted
  on from its landmarks, worn right or below the nose, and without) zoomed the same way.

A face's box is the detector's own (the default pair's, first pass only) on the untouched photo, where
the face has an ordinary size. It counts as found when a detection overlaps that box at IoU >= 0.5
(``found_any``: any detection at all; ``fragments``: detections whose centre lies in the face but that
overlap it less: an eye, a mouth). Run from the repository root::

    .venv/bin/python tools/close_faces.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

FILLS = (0.80, 0.85, 0.90, 0.95, 1.00)
SIZE = 1024

Portrait = Tuple[str, np.ndarray, np.ndarray, str]  # name, 1024x1024 BGR image, face box (4,), mask class


def zoom_to_face(image: np.ndarray, box: Sequence[float], fill: float,
                 size: int = SIZE) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """A ``size`` x ``size`` cut-out of ``image`` in which ``box`` (x1, y1, x2, y2) is ``fill`` of the frame's
    height (or width, when wider); the square is moved inside the photo when it crosses an edge. None when
    the square is larger than the photo. Returns (frame, the box in frame pixels)."""
    x1, y1, x2, y2 = [float(v) for v in box]
    side = max(x2 - x1, y2 - y1) / fill
    h, w = image.shape[:2]
    if side > min(w, h):
        return None
    left = min(max(0.5 * (x1 + x2) - side / 2, 0.0), w - side)
    top = min(max(0.5 * (y1 + y2) - side / 2, 0.0), h - side)
    s = size / side
    m = np.array([[s, 0, -left * s], [0, s, -top * s]], np.float32)
    frame = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    face = np.array([(x1 - left) * s, (y1 - top) * s, (x2 - left) * s, (y2 - top) * s], np.float32)
    return frame, np.clip(face, 0, size)


def _reference_box(face_detector: Any, image: np.ndarray, label_box: np.ndarray) -> Optional[np.ndarray]:
    """The face box of the labelled person in the detector's own convention: the detection on the untouched
    photo (where the face is of ordinary size) whose centre lies in the label's box. None when there is none."""
    from kiosk.vision.tracker import iou_matrix

    boxes = face_detector.detect_arrays(image)[0]
    if not len(boxes):
        return None
    cx, cy = 0.5 * (boxes[:, 0] + boxes[:, 2]), 0.5 * (boxes[:, 1] + boxes[:, 3])
    x1, y1, x2, y2 = label_box
    inside = (cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2)
    if not inside.any():
        return None
    overlap = iou_matrix(boxes, np.asarray(label_box, np.float32)[None])[:, 0]
    return boxes[int(np.argmax(np.where(inside, overlap, -1.0)))]


def dataset_portraits(shared: str, face_detector: Any, min_source: int = 96) -> Iterator[Portrait]:
    from kiosk.train.data import CLASSES, load_dataset, read_splits

    k = 0
    for name, splits in (("mask_wearing", None), ("facemask", ("val", "test"))):
        data = os.path.join(shared, "data", name)
        if not os.path.isdir(data):
            continue
        anns = load_dataset(data)
        if splits is not None:
            keep = {n for s in splits for n in read_splits(os.path.join(REPO, "engines", "splits"))[s]}
            anns = [a for a in anns if a.image in keep]
        for a in sorted(anns, key=lambda a: a.image):
            image = None
            for box, label in zip(a.boxes, a.labels):
                if box[3] - box[1] < min_source:
                    continue
                if image is None:
                    image = cv2.imread(os.path.join(data, "images", a.image), cv2.IMREAD_COLOR)
                ref = _reference_box(face_detector, image, box)
                if ref is None or ref[3] - ref[1] < min_source:
                    continue
                got = zoom_to_face(image, ref, FILLS[k % len(FILLS)])
                if got is None:
                    continue
                k += 1
                yield "{}/{}#{}".format(name, a.image, k), got[0], got[1], CLASSES[int(label)]


def demo_portraits(face_detector: Any) -> Iterator[Portrait]:
    """The six demo faces at each fill."""
    from kiosk.demo.scenes import AssetMissing, load_person

    for person in ("person1", "person2"):
        for mask in ("with_mask", "without_mask", "mask_weared_incorrect"):
            try:
                image = cv2.cvtColor(load_person(person, mask), cv2.COLOR_BGRA2BGR)
            except AssetMissing:
                continue
            boxes = face_detector.detect_arrays(image)[0]
            if not len(boxes):
                continue
            # zoom_to_face needs the square inside the photo: give it a border of the photo's own edge
            pad = 200
            big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            for fill in FILLS:
                got = zoom_to_face(big, boxes[0] + pad, fill)
                if got is not None:
                    yield "demo/{}_{}@{:.2f}".format(person, mask, fill), got[0], got[1], mask


def portraits(shared: str, face_detector: Any, min_source: int = 96) -> List[Portrait]:
    """The close portraits; ``face_detector`` (a :class:`kiosk.vision.faces.FaceDetector` at its ordinary
    settings) gives each face's reference box on the untouched photo."""
    return list(dataset_portraits(shared, face_detector, min_source)) + list(demo_portraits(face_detector))


def camera_frames(items: Sequence[Portrait], size: Tuple[int, int] = (640, 480)) -> List[Portrait]:
    """The portraits as the kiosk's camera frames: shrunk to the frame's height, the sides filled with
    the portrait's own edge pixels; the face fills the same fraction of the frame's height."""
    w, h = size
    out = []
    for name, frame, box, label in items:
        small = cv2.resize(frame, (h, h), interpolation=cv2.INTER_AREA)
        left = (w - h) // 2
        wide = cv2.copyMakeBorder(small, 0, 0, left, w - h - left, cv2.BORDER_REPLICATE)
        face = np.asarray(box, np.float32) * (h / float(frame.shape[0])) + np.array([left, 0, left, 0], np.float32)
        out.append((name, wide, face, label))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from kiosk.vision.tracker import iou_matrix

    return iou_matrix(np.asarray(a, np.float32).reshape(-1, 4), np.asarray(b, np.float32).reshape(-1, 4))[:, 0]


def score(detector: Any, items: Sequence[Portrait]) -> Dict[str, Any]:
    found = found_any = right = fragments = 0
    ms: List[float] = []
    missed: List[str] = []
    for name, frame, box, label in items:
        t0 = time.perf_counter()
        dets = detector.detect(frame)
        ms.append((time.perf_counter() - t0) * 1000)
        found_any += bool(dets)
        overlap = _iou(np.array([d.box for d in dets]), box) if dets else np.zeros(0)
        for d, o in zip(dets, overlap):  # a box in the face that is not the face: an eye, a mouth
            cx, cy = 0.5 * (d.box[0] + d.box[2]), 0.5 * (d.box[1] + d.box[3])
            fragments += bool(o < 0.5 and box[0] < cx < box[2] and box[1] < cy < box[3])
        if len(overlap) and overlap.max() >= 0.5:
            found += 1
            right += dets[int(overlap.argmax())].mask.value == label
        else:
            missed.append(name)
    n = len(items)
    return {
        "portraits": n,
        "found": found,
        "recall": round(found / max(n, 1), 3),
        "found_any": found_any,
        "fragments": fragments,
        "mask_accuracy_of_found": round(right / max(found, 1), 3),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "missed": missed,
    }


def detectors(face_model: str, mask_model: str, models_dir: str, coarse: bool) -> Dict[str, Any]:
    """The detector of ``dabai-kiosk detect`` and the kiosk's live one, for the given pair."""
    from dataclasses import replace
    from pathlib import Path

    from kiosk.config import Config, Home
    from kiosk.models.selection import detector_files
    from kiosk.runtime.assemble import build_detector as live_detector
    from kiosk.vision.mask import MaskDetector

    cfg = Config()
    cfg = replace(cfg, vision=replace(cfg.vision, face_model=face_model or cfg.vision.face_model,
                                      mask_model=mask_model or cfg.vision.mask_model))
    face, mask, correction = detector_files(cfg.vision.face_model, cfg.vision.mask_model, models_dir)
    cli = MaskDetector(face, mask, cfg.vision.backend, box_correction=correction)  # as kiosk.cli.vision.build_detector
    live = live_detector(cfg, Home(Path(models_dir).parent))
    for det in (cli, live):
        det.faces.coarse_pass = coarse
    return {"detect": cli, "live": live}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--shared", default=os.environ.get("DABAI_SHARED", os.path.join(REPO, "..", "shared")))
    ap.add_argument("--face-model", default="", help="vision.face_model (default: the kiosk's default)")
    ap.add_argument("--mask-model", default="", help="vision.mask_model (default: the one of the face model)")
    ap.add_argument("--models", default=os.path.expanduser("~/.local/share/dabai/models"),
                    help="the data home's models folder, for a catalogue name as --face-model")
    ap.add_argument("--min-source", type=int, default=96, help="smallest face height in the source photo, px")
    ap.add_argument("--save", help="write the portraits as JPEG into this folder (not into the repository)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    before = detectors(args.face_model, args.mask_model, args.models, coarse=False)
    after = detectors(args.face_model, args.mask_model, args.models, coarse=True)
    items = portraits(args.shared, before["detect"].faces, args.min_source)
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        for name, frame, _, _ in items:
            cv2.imwrite(os.path.join(args.save, name.replace("/", "_").replace("#", "_") + ".jpg"), frame)
    camera = camera_frames(items)
    report = {
        "portraits": len(items),
        "from_dataset": sum(not n.startswith("demo/") for n, _, _, _ in items),
        "size": SIZE,
        "fills": list(FILLS),
    }  # type: Dict[str, Any]
    for when, dets in (("before", before), ("after", after)):
        report[when] = {k: score(d, items) for k, d in dets.items()}
        report[when]["live_640x480"] = score(dets["live"], camera)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for when in ("before", "after"):
            for path, r in report[when].items():
                print("{:<6} {:<12} found {:>3}/{} (recall {:.3f}), any detection {:>3}, fragments {:>3}, "
                      "mask accuracy {:.3f}, p50 {} ms".format(when, path, r["found"], r["portraits"], r["recall"],
                                                               r["found_any"], r["fragments"],
                                                               r["mask_accuracy_of_found"], r["p50_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
