"""Evaluate the mask model the way the kiosk runs it (ONNX through the kiosk's Runner).

    python -m kiosk.train.evaluate --data ../shared/data/facemask --split test \
        --mask-model engines/mask_classifier.onnx --face-model ../shared/models/yunet/yunet_n_dynamic.onnx

- classifier on GT face crops: accuracy, balanced accuracy, per-class recall, confusion matrix,
  and the same on close-range faces (GT box height >= 64 px);
- detector + classifier end to end: VOC all-point AP per class at IoU 0.5, mAP@0.5 and
  mAP@0.5:0.95; a detection's score is face score x class probability (``--multilabel``: each
  face once per class); ``--mode live|photo`` picks the detector settings.

The shared pieces (AP, matching, confusion matrix, plots, tolerant dataset loading) are used by
``kiosk.cli.evaluate`` (``dabai-kiosk eval detector``).

Python 3.8 compatible (no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

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
    anns, _ = load_eval_set(data_dir, names)
    return classifier_report(clf, data_dir, anns, close_px)


def classifier_report(clf, data_dir: str, anns: Sequence[Annotation], close_px: int = 64,  # type: ignore[no-untyped-def]
                      flip: bool = False) -> Dict[str, object]:
    """Classifier on the GT face crops of ``anns``: all faces and close-range faces (GT height >= close_px)."""
    ys, ps, hs = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    for a in anns:
        if len(a.boxes) == 0:
            continue
        img = read_image(os.path.join(data_dir, "images", a.image))
        if img is None:
            continue
        prob = clf.classify_boxes(img, a.boxes, flip)
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


def read_image(path: str) -> Optional[np.ndarray]:
    """BGR image, or None when the file is missing, empty or not a decodable image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return img if img is not None and img.size else None


def load_eval_set(data_dir: str, names: Optional[Sequence[str]] = None) -> Tuple[List[Annotation], Dict[str, object]]:
    """Annotations of a VOC folder (only ``names`` when given) and a report of what was skipped:
    unreadable XML files, XML without image, names not in the folder, objects of unknown classes."""
    problems = {}  # type: Dict[str, List[str]]
    anns = load_dataset(data_dir, problems)
    if names is not None:
        by = {a.image: a for a in anns}
        problems["not_in_folder"] = [n for n in names if n not in by]
        anns = [by[n] for n in names if n in by]
    unknown = {}  # type: Dict[str, int]
    for a in anns:
        for c in a.unknown:
            unknown[c] = unknown.get(c, 0) + 1
    skipped = {k: len(v) for k, v in problems.items() if v}  # type: Dict[str, object]
    if unknown:
        skipped["unknown_class_objects"] = unknown
    return anns, skipped


def run_detector(detector, data_dir: str, anns: Sequence[Annotation]):  # type: ignore[no-untyped-def]
    """``detector.detect_arrays`` (:class:`kiosk.vision.mask.MaskDetector`) on every image:
    (annotations of the images that could be read, [{"boxes", "scores", "probs"}], [unreadable names], seconds)."""
    kept, raws, bad = [], [], []
    t = 0.0
    for a in anns:
        img = read_image(os.path.join(data_dir, "images", a.image))
        if img is None:
            bad.append(a.image)
            continue
        t0 = time.perf_counter()
        boxes, scores, probs, _ = detector.detect_arrays(img)
        t += time.perf_counter() - t0
        kept.append(a)
        raws.append({"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                     "scores": np.asarray(scores, np.float32).reshape(-1),
                     "probs": np.asarray(probs, np.float32).reshape(-1, len(CLASSES))})
    return kept, raws, bad, t


def to_detections(raws: Sequence[Dict[str, np.ndarray]], multilabel: bool) -> List[Dict[str, np.ndarray]]:
    """Scored detections for AP. Single-label: each face once, with its arg-max class, score = face
    score x class probability. Multi-label: each face once per class, score = face score x p(class)
    (the protocol of YOLOv5/v8 validation, whose published mAPs use it)."""
    out = []
    for r in raws:
        b, s, p = r["boxes"], r["scores"], r["probs"]
        if multilabel:
            k = len(CLASSES)
            out.append({"boxes": np.repeat(b, k, 0), "labels": np.tile(np.arange(k), len(b)),
                        "scores": (s[:, None] * p).reshape(-1)})
        else:
            lab = p.argmax(1) if len(p) else np.zeros(0, np.int64)
            out.append({"boxes": b, "labels": lab, "scores": s * (p.max(1) if len(p) else s)})
    return out


def match_detections(a: Annotation, d: Dict[str, np.ndarray], c: int, thr: float) -> Tuple[np.ndarray, np.ndarray, int]:
    """(scores, true-positive flags, number of GT) of class ``c`` in one image, VOC greedy matching."""
    g = a.boxes[a.labels == c]
    sel = d["labels"] == c
    b, s = d["boxes"][sel], d["scores"][sel]
    o = np.argsort(-s, kind="stable")
    b, s = b[o], s[o]
    tp = np.zeros(len(b))
    if len(g) and len(b):
        iou = iou_matrix(b, g)
        used = np.zeros(len(g), bool)
        for j in range(len(b)):
            k = int(np.argmax(iou[j]))
            if iou[j, k] >= thr and not used[k]:
                used[k] = True
                tp[j] = 1
    return s, tp, len(g)


def pr_curve(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> Tuple[np.ndarray, np.ndarray]:
    """(recall, precision) along detections sorted by descending score."""
    o = np.argsort(-np.asarray(scores), kind="stable")
    t = np.asarray(tp, np.float64)[o]
    ctp, cfp = np.cumsum(t), np.cumsum(1 - t)
    return ctp / max(n_gt, 1), ctp / np.maximum(ctp + cfp, 1e-9)


def detection_ap(anns: Sequence[Annotation], dets: Sequence[Dict[str, np.ndarray]],
                 thresholds: Sequence[float] = (0.5,), curves: Optional[Dict[str, Tuple[np.ndarray, np.ndarray]]] = None
                 ) -> Dict[str, Dict[str, float]]:
    """dets[i]: {"boxes": (N,4), "labels": (N,), "scores": (N,)} for anns[i]. Returns thr -> class -> AP
    (NaN for a class without GT). ``curves`` (optional) receives class -> (recall, precision) at IoU 0.5."""
    out = {}  # type: Dict[str, Dict[str, float]]
    for thr in thresholds:
        res = {}
        for c in range(len(CLASSES)):
            scores, tps, n_gt = [], [], 0
            for a, d in zip(anns, dets):
                s, tp, n = match_detections(a, d, c, thr)
                n_gt += n
                scores.append(s)
                tps.append(tp)
            sc = np.concatenate(scores) if scores else np.zeros(0)
            tp_all = np.concatenate(tps) if tps else np.zeros(0)
            res[CLASSES[c]] = average_precision(sc, tp_all, n_gt)
            if curves is not None and abs(thr - 0.5) < 1e-9:
                curves[CLASSES[c]] = pr_curve(sc, tp_all, n_gt)
        out["{:.2f}".format(thr)] = res
    return out


def detection_confusion(anns: Sequence[Annotation], raws: Sequence[Dict[str, np.ndarray]], iou_thr: float = 0.5,
                        conf: float = 0.25) -> np.ndarray:
    """(4,4) counts, rows true / columns predicted over (with, without, incorrect, background):
    detections with face score x class probability >= ``conf``, arg-max class, matched one-to-one to
    GT boxes (any class) by IoU >= ``iou_thr``; missed GT -> background column, unmatched -> background row."""
    k = len(CLASSES)
    m = np.zeros((k + 1, k + 1), np.int64)
    for a, r in zip(anns, raws):
        p = r["probs"]
        lab = p.argmax(1) if len(p) else np.zeros(0, np.int64)
        score = r["scores"] * (p.max(1) if len(p) else r["scores"])
        keep = np.nonzero(score >= conf)[0]
        keep = keep[np.argsort(-score[keep], kind="stable")]
        b = r["boxes"][keep]
        used = np.zeros(len(a.boxes), bool)
        iou = iou_matrix(b, a.boxes)
        for j in range(len(b)):
            cand = np.where(used, -1.0, iou[j]) if len(a.boxes) else np.zeros(0)
            if len(cand) and cand.max() >= iou_thr:
                g = int(cand.argmax())
                used[g] = True
                m[a.labels[g], lab[keep[j]]] += 1
            else:
                m[k, lab[keep[j]]] += 1
        for g in np.nonzero(~used)[0]:
            m[a.labels[g], k] += 1
    return m


def summarize_ap(ap: Dict[str, Dict[str, float]]) -> Dict[str, object]:
    """map50, map50_95 and per-class AP@0.5 from :func:`detection_ap` over IoU 0.50:0.05:0.95
    (classes without GT are left out of the means)."""
    def mean(v: Dict[str, float]) -> float:
        x = [y for y in v.values() if not np.isnan(y)]
        return float(np.mean(x)) if x else float("nan")

    maps = [mean(v) for v in ap.values()]
    ap50 = ap["0.50"]
    return {
        "map50": _r(maps[0]),
        "map50_95": _r(float(np.mean(maps))),
        "ap50": {c: _r(v) for c, v in ap50.items()},
    }


def _r(x: float) -> Optional[float]:
    return None if x is None or np.isnan(x) else round(float(x), 4)


IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def evaluate_detector(detector, data_dir: str, names: Optional[Sequence[str]] = None,  # type: ignore[no-untyped-def]
                      multilabel: bool = False) -> Dict[str, object]:
    """End-to-end AP of a :class:`kiosk.vision.mask.MaskDetector` on VOC images (all, or ``names``)."""
    anns, skipped = load_eval_set(data_dir, names)
    anns, raws, bad, t = run_detector(detector, data_dir, anns)
    rep = summarize_ap(detection_ap(anns, to_detections(raws, multilabel), IOU_THRESHOLDS))
    rep.update({"images": len(anns), "multilabel": multilabel, "ms_per_image": round(1000 * t / max(len(anns), 1), 2)})
    if bad or skipped:
        rep["skipped"] = dict(skipped, unreadable_images=len(bad))
    return rep


def plot_confusion(m: np.ndarray, path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(CLASSES) + ["background"]
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(int(m[i, j])), ha="center", va="center",
                    color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "detection confusion (IoU 0.5)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_pr(curves: Dict[str, Tuple[np.ndarray, np.ndarray]], aps: Dict[str, Optional[float]], path: str,
            title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for c, (rec, prec) in curves.items():
        ap = aps.get(c)
        ax.plot(rec, prec, label="{} AP@0.5 {}".format(c, "n/a" if ap is None else "{:.3f}".format(ap)))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or "precision-recall, IoU 0.5")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    ap.add_argument("--mode", default="live", choices=("live", "photo"), help="detector settings (kiosk.vision.mask.MODES)")
    ap.add_argument("--multilabel", action="store_true", help="score every face once per class (YOLO validation protocol)")
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
        from kiosk.vision.faces import box_correction_for
        from kiosk.vision.mask import MaskDetector

        # the correction that goes with the file (its JSON sidecar, else YuNet's learned one)
        det = MaskDetector.for_mode(a.face_model, a.mask_model, a.mode, a.backend,
                                    box_correction=box_correction_for(a.face_model))
        rep["end_to_end"] = dict(evaluate_detector(det, a.data, names, a.multilabel), mode=a.mode)
    print(json.dumps(rep, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
