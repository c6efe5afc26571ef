"""Measure YuNet against the dataset: recall at IoU 0.5 / 0.3 per model and input scale, the
constant box correction (relative to box size) that maps YuNet boxes to the dataset's box
convention, and detector speed on a 640x480 frame.

    python -m kiosk.train.detector_offset --data ../shared/data/facemask \
        --models ../shared/models/yunet --split-dir engines/splits

The correction is estimated on the TRAIN split only and reported on val and test.
``--fit yunet_n_dynamic:640:0.3,yunet_n_dynamic:800:0.1`` fits the learned correction instead
(:data:`kiosk.vision.faces.DEFAULT_BOX_REGRESSION`) and prints its (4, 14) matrix.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from kiosk.train.data import Annotation, iou_matrix, load_dataset, read_splits


def _detect_all(det, anns: Sequence[Annotation], img_dir: str) -> List[Tuple[np.ndarray, np.ndarray]]:
    out = []
    for a in anns:
        img = cv2.imread(os.path.join(img_dir, a.image), cv2.IMREAD_COLOR)
        boxes, scores, _ = det.detect_arrays(img)
        out.append((boxes, scores))
    return out


def apply_correction(boxes: np.ndarray, c: Sequence[float]) -> np.ndarray:
    b = np.asarray(boxes, np.float32).copy()
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    b[:, 0] += c[0] * w
    b[:, 1] += c[1] * h
    b[:, 2] += c[2] * w
    b[:, 3] += c[3] * h
    return b


def recall(
    anns: Sequence[Annotation], dets: Sequence[Tuple[np.ndarray, np.ndarray]], thr: float, corr=None, min_h: float = 0
) -> Tuple[float, int]:
    hit = tot = 0
    for a, (b, _) in zip(anns, dets):
        g = a.boxes[(a.boxes[:, 3] - a.boxes[:, 1]) >= min_h]
        tot += len(g)
        if len(g) == 0 or len(b) == 0:
            continue
        if corr is not None:
            b = apply_correction(b, corr)
        iou = iou_matrix(g, b)
        # one detection per GT (greedy by IoU)
        used = set()
        for gi in np.argsort(-iou.max(1)):
            j = int(np.argmax(np.where([k in used for k in range(iou.shape[1])], -1, iou[gi])))
            if iou[gi, j] >= thr and j not in used:
                used.add(j)
                hit += 1
    return hit / max(tot, 1), tot


def estimate_correction(anns: Sequence[Annotation], dets: Sequence[Tuple[np.ndarray, np.ndarray]]) -> List[float]:
    """Median relative edge offsets (gt - det) / det size over pairs matched at IoU >= 0.3."""
    rel = []
    for a, (b, _) in zip(anns, dets):
        if len(a.boxes) == 0 or len(b) == 0:
            continue
        iou = iou_matrix(a.boxes, b)
        for gi in range(len(a.boxes)):
            j = int(np.argmax(iou[gi]))
            if iou[gi, j] >= 0.3:
                d = b[j]
                w, h = d[2] - d[0], d[3] - d[1]
                g = a.boxes[gi]
                rel.append([(g[0] - d[0]) / w, (g[1] - d[1]) / h, (g[2] - d[2]) / w, (g[3] - d[3]) / h])
    r = np.asarray(rel)
    return [round(float(x), 4) for x in np.median(r, 0)]


def fit_box_regression(anns: Sequence[Annotation], raws: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]],
                       lam: float = 1e-2) -> np.ndarray:
    """(4, 14) ridge least-squares map from :func:`kiosk.vision.faces.box_features` of raw YuNet
    detections (boxes, scores, landmarks) to the dataset's edge offsets (fractions of the YuNet box),
    over one-to-one pairs (mutual best, IoU >= 0.3 after the constant correction)."""
    from kiosk.vision.faces import DEFAULT_BOX_CORRECTION, box_features

    xs, ys = [], []
    for a, (b, s, k) in zip(anns, raws):
        if len(a.boxes) == 0 or len(b) == 0:
            continue
        iou = iou_matrix(a.boxes, apply_correction(b, DEFAULT_BOX_CORRECTION))
        for gi in range(len(a.boxes)):
            j = int(np.argmax(iou[gi]))
            if iou[gi, j] >= 0.3 and int(np.argmax(iou[:, j])) == gi:
                d, g = b[j], a.boxes[gi]
                w, h = d[2] - d[0], d[3] - d[1]
                xs.append(box_features(b[j:j + 1], s[j:j + 1], k[j:j + 1])[0])
                ys.append([(g[0] - d[0]) / w, (g[1] - d[1]) / h, (g[2] - d[2]) / w, (g[3] - d[3]) / h])
    x, y = np.asarray(xs), np.asarray(ys)
    reg = lam * np.eye(x.shape[1])
    reg[0, 0] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(x.T @ x + reg, x.T @ y).T


def time_frame(det, frame: np.ndarray, n: int = 30) -> float:
    det.detect_arrays(frame)
    t = time.perf_counter()
    for _ in range(n):
        det.detect_arrays(frame)
    return (time.perf_counter() - t) / n * 1000.0


def main(argv: Optional[List[str]] = None) -> int:
    from kiosk.vision.faces import FaceDetector

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--models", required=True, help="folder with yunet_*.onnx")
    ap.add_argument("--split-dir", default="engines/splits")
    ap.add_argument(
        "--configs",
        default="yunet_n_dynamic:1:640,yunet_n_dynamic:2,yunet_s_dynamic:1:640,yunet_s_640_640:0,yunet_n_640_640:0",
        help="model:scale[:min_long_side],... (scale 0 = fixed-size model letterboxed)",
    )
    ap.add_argument("--score", type=float, default=0.6)
    ap.add_argument("--frame", default=None, help="a 640x480 (or any) image for timing; default: a dataset image resized")
    ap.add_argument("--fit", default=None, metavar="MODEL:MIN_LONG_SIDE[:SCORE],...",
                    help="only fit the learned box correction on TRAIN detections (score >= SCORE, default 0.1)")
    args = ap.parse_args(argv)
    anns = load_dataset(args.data)
    by = {a.image: a for a in anns}
    splits = read_splits(args.split_dir)
    img_dir = os.path.join(args.data, "images")
    if args.fit:
        tr = [by[n] for n in splits["train"]]
        all_a, all_r = [], []  # type: list, list
        for spec in args.fit.split(","):
            name, mls, *rest = spec.split(":")
            det = FaceDetector(os.path.join(args.models, name + ".onnx"), score_threshold=float(rest[0]) if rest else 0.1,
                               min_long_side=int(mls),
                               box_correction=(0, 0, 0, 0))
            for a in tr:
                all_a.append(a)
                all_r.append(det.detect_arrays(cv2.imread(os.path.join(img_dir, a.image), cv2.IMREAD_COLOR)))
        print(json.dumps({"box_regression": np.round(fit_box_regression(all_a, all_r), 4).tolist()}))
        return 0
    if args.frame:
        frame = cv2.imread(args.frame)
    else:
        frame = cv2.resize(cv2.imread(os.path.join(img_dir, splits["test"][0])), (640, 480))
    results = []
    for spec in args.configs.split(","):
        parts = spec.split(":")
        name, sc = parts[0], float(parts[1]) if len(parts) > 1 else 1.0
        min_long = int(parts[2]) if len(parts) > 2 else 0
        det = FaceDetector(os.path.join(args.models, name + ".onnx"), score_threshold=args.score,
                           scale=sc or 1.0, min_long_side=min_long, box_correction=(0, 0, 0, 0))
        row = {"model": name, "scale": sc, "min_long_side": min_long, "score_threshold": args.score,
               "ms_640x480": round(time_frame(det, frame), 2)}
        per = {}
        for s in ("train", "val", "test"):
            sa = [by[n] for n in splits[s]]
            per[s] = (sa, _detect_all(det, sa, img_dir))
        corr = estimate_correction(*per["train"])
        row["correction"] = corr
        for s in ("val", "test"):
            sa, dets = per[s]
            row[s] = {
                "recall@0.5": round(recall(sa, dets, 0.5)[0], 4),
                "recall@0.3": round(recall(sa, dets, 0.3)[0], 4),
                "recall@0.5_corrected": round(recall(sa, dets, 0.5, corr)[0], 4),
                "recall@0.5_corrected_h>=64": round(recall(sa, dets, 0.5, corr, 64)[0], 4),
            }
        print(json.dumps(row), flush=True)
        results.append(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
