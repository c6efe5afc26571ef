"""Evaluate the mask model the way the kiosk runs it (ONNX through the kiosk's Runner).

    python -m kiosk.train.evaluate --data ../shared/data/facemask --split test \
        --mask-model engines/mask_classifier.onnx --face-model ../shared/models/yunet/yunet_n_dynamic.onnx

- classifier on GT face crops: accuracy, balanced accuracy, per-class recall, confusion matrix,
  and the same on close-range faces (GT box height >= 64 px);
- detector + classifier end to end: VOC all-point AP per class at IoU 0.5, mAP@0.5 and
  mAP@0.5:0.95; a detection's score is face score x class probability.

Python 3.8 compatible (no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from kiosk.train.data import CLASSES, Annotation, iou_matrix, load_dataset, read_splits


def _summ(y: np.ndarray, p: np.ndarray) -> Dict[str, object]:
    m = np.zeros((3, 3), np.int64)
    np.add.at(m, (y, p), 1)
    sup = m.sum(1)
    rec = m.diagonal() / np.maximum(sup, 1)
    return {
        "n": int(len(y)),
        "accuracy": round(float((y == p).mean()), 4) if len(y) else None,
        "balanced_accuracy": round(float(rec[sup > 0].mean()), 4) if len(y) else None,
        "recall": {c: (round(float(r), 4) if s else None) for c, r, s in zip(CLASSES, rec, sup)},
        "support": {c: int(s) for c, s in zip(CLASSES, sup)},
        "confusion(rows=true,cols=pred)": m.tolist(),
    }


def evaluate_classifier(mask_model: str, data_dir: str, names: Sequence[str], backend: str = "auto",
                        close_px: int = 64) -> Dict[str, object]:
    from kiosk.vision.mask import MaskClassifier

    clf = MaskClassifier(mask_model, backend)
    by = {a.image: a for a in load_dataset(data_dir)}
    ys, ps, hs = [], [], []
    for n in names:
        a = by[n]
        if len(a.boxes) == 0:
            continue
        img = cv2.imread(os.path.join(data_dir, "images", n), cv2.IMREAD_COLOR)
        prob = clf.classify_boxes(img, a.boxes)
        ys.append(a.labels)
        ps.append(prob.argmax(1))
        hs.append(a.boxes[:, 3] - a.boxes[:, 1])
    y, p, h = np.concatenate(ys), np.concatenate(ps), np.concatenate(hs)
    close = h >= close_px
    return {"all": _summ(y, p), "close_range_h>={}".format(close_px): _summ(y[close], p[close])}


def average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """VOC all-point interpolated AP."""
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    o = np.argsort(-scores, kind="stable")
    tp = tp[o].astype(np.float64)
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1 - tp)
    rec = ctp / n_gt
    prec = ctp / np.maximum(ctp + cfp, 1e-9)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def detection_ap(anns: Sequence[Annotation], dets: Sequence[Dict[str, np.ndarray]],
                 thresholds: Sequence[float] = (0.5,)) -> Dict[str, Dict[str, float]]:
    """dets[i]: {"boxes": (N,4), "labels": (N,), "scores": (N,)} for anns[i]. Returns thr -> class -> AP."""
    out = {}  # type: Dict[str, Dict[str, float]]
    for thr in thresholds:
        res = {}
        for c in range(len(CLASSES)):
            scores, tps, n_gt = [], [], 0
            for a, d in zip(anns, dets):
                g = a.boxes[a.labels == c]
                n_gt += len(g)
                sel = d["labels"] == c
                b, s = d["boxes"][sel], d["scores"][sel]
                if len(b) == 0:
                    continue
                o = np.argsort(-s, kind="stable")
                b, s = b[o], s[o]
                tp = np.zeros(len(b))
                if len(g):
                    iou = iou_matrix(b, g)
                    used = np.zeros(len(g), bool)
                    for j in range(len(b)):
                        k = int(np.argmax(iou[j]))
                        if iou[j, k] >= thr and not used[k]:
                            used[k] = True
                            tp[j] = 1
                scores.append(s)
                tps.append(tp)
            sc = np.concatenate(scores) if scores else np.zeros(0)
            tp_all = np.concatenate(tps) if tps else np.zeros(0)
            res[CLASSES[c]] = average_precision(sc, tp_all, n_gt)
        out["{:.2f}".format(thr)] = res
    return out


def evaluate_detector(detector, data_dir: str, names: Optional[Sequence[str]] = None) -> Dict[str, object]:  # type: ignore[no-untyped-def]
    """End-to-end AP of a :class:`kiosk.vision.mask.MaskDetector` on VOC images (all, or ``names``)."""
    anns = load_dataset(data_dir)
    if names is not None:
        keep = set(names)
        anns = [a for a in anns if a.image in keep]
    dets = []
    t = 0.0
    for a in anns:
        img = cv2.imread(os.path.join(data_dir, "images", a.image), cv2.IMREAD_COLOR)
        t0 = time.perf_counter()
        ds = detector.detect(img)
        t += time.perf_counter() - t0
        dets.append({
            "boxes": np.asarray([d.box for d in ds], np.float32).reshape(-1, 4),
            "labels": np.asarray([CLASSES.index(d.mask.value) for d in ds], np.int64),
            "scores": np.asarray([d.face_score * d.confidence for d in ds], np.float32),
        })
    thr = [0.5 + 0.05 * i for i in range(10)]
    ap = detection_ap(anns, dets, thr)
    ap50 = ap["0.50"]
    maps = [float(np.nanmean(list(v.values()))) for v in ap.values()]
    return {
        "images": len(anns),
        "AP@0.5": {k: round(v, 4) for k, v in ap50.items()},
        "mAP@0.5": round(maps[0], 4),
        "mAP@0.5:0.95": round(float(np.mean(maps)), 4),
        "ms_per_image": round(1000 * t / max(len(anns), 1), 2),
    }


def letterbox(img: np.ndarray, w: int = 640, h: int = 480) -> np.ndarray:
    """``img`` scaled to fit a w x h frame (top-left, black border): a stand-in camera frame."""
    s = min(w / img.shape[1], h / img.shape[0])
    r = cv2.resize(img, (max(1, int(img.shape[1] * s)), max(1, int(img.shape[0] * s))))
    f = np.zeros((h, w, 3), np.uint8)
    f[: r.shape[0], : r.shape[1]] = r
    return f


def bench_frame(detector, frame: np.ndarray, runs: int = 100) -> Dict[str, float]:  # type: ignore[no-untyped-def]
    """p50 / p95 milliseconds of ``detector.detect(frame)`` after 5 warm-up runs."""
    for _ in range(5):
        detector.detect(frame)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        detector.detect(frame)
        ts.append(1000 * (time.perf_counter() - t))
    return {"p50_ms": round(float(np.percentile(ts, 50)), 2), "p95_ms": round(float(np.percentile(ts, 95)), 2),
            "faces": len(detector.detect(frame))}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    ap.add_argument("--split-dir", default="engines/splits")
    ap.add_argument("--mask-model", default="engines/mask_classifier.onnx")
    ap.add_argument("--face-model", default=None, help="YuNet ONNX; enables the end-to-end AP")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--bench", nargs="*", default=None, metavar="IMAGE",
                    help="only time detect+classify on these images letterboxed into 640x480 frames")
    a = ap.parse_args(argv)
    if a.bench is not None:
        from kiosk.vision.mask import MaskDetector

        det = MaskDetector(a.face_model, a.mask_model, a.backend)
        for path in a.bench:
            frame = letterbox(cv2.imread(path, cv2.IMREAD_COLOR))
            print(json.dumps({"image": path, "frame": "640x480", **bench_frame(det, frame)}))
        return 0
    names = [x.image for x in load_dataset(a.data)] if a.split == "all" else read_splits(a.split_dir)[a.split]
    rep = {"split": a.split, "images": len(names),
           "classifier_on_gt_crops": evaluate_classifier(a.mask_model, a.data, names, a.backend)}  # type: Dict[str, object]
    if a.face_model:
        from kiosk.vision.mask import MaskDetector

        rep["end_to_end"] = evaluate_detector(MaskDetector(a.face_model, a.mask_model, a.backend), a.data, names)
    print(json.dumps(rep, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
