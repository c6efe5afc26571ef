"""Recall, accuracy and speed on close faces at several detection scales (the kiosk's own view).

Each val/test image of the dataset is fitted into a 640x480 camera frame; faces whose box in
that frame is at least ``min_height`` px tall are the ones a kiosk user shows. For each scale the
kiosk's live detector runs on the frame; a face counts as found at IoU ≥ 0.5, and as right when
its mask class is the labelled one. Used to choose ``vision.detect_scale``.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Dict, List, Sequence, Tuple

import cv2
import numpy as np

from kiosk.vision.tracker import iou_matrix


def camera_frame(image: np.ndarray, size: Sequence[int] = (640, 480)) -> Tuple[np.ndarray, float]:
    w, h = size
    s = min(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, (int(image.shape[1] * s), int(image.shape[0] * s)))
    frame = np.zeros((h, w, 3), np.uint8)
    frame[: resized.shape[0], : resized.shape[1]] = resized
    return frame, s


def run_close_range_bench(
    make_detector: Any, data_dir: str, split_files: List[str], scales: Sequence[float], min_height: int = 64
) -> Dict[str, Any]:
    from kiosk.train.data import CLASSES, parse_voc

    names = [line.strip() for path in split_files for line in open(path, encoding="utf-8") if line.strip()]
    detectors = {scale: make_detector(scale) for scale in scales}
    tally = {scale: {"faces": 0, "found": 0, "right": 0, "ms": []} for scale in scales}  # type: Dict[float, Dict[str, Any]]
    for name in names:
        ann = parse_voc(os.path.join(data_dir, "annotations", os.path.splitext(name)[0] + ".xml"))
        image = cv2.imread(os.path.join(data_dir, "images", ann.image), cv2.IMREAD_COLOR)
        if image is None:
            continue
        frame, s = camera_frame(image)
        boxes = ann.boxes * s
        close = (boxes[:, 3] - boxes[:, 1]) >= min_height
        if not close.any():
            continue
        for scale, detector in detectors.items():
            t0 = time.perf_counter()
            found = detector.detect(frame)
            tally[scale]["ms"].append((time.perf_counter() - t0) * 1000)
            for box, label in zip(boxes[close], ann.labels[close]):
                tally[scale]["faces"] += 1
                if not found:
                    continue
                overlap = iou_matrix(np.array([d.box for d in found], np.float32), box[None])[:, 0]
                best = int(overlap.argmax())
                if overlap[best] >= 0.5:
                    tally[scale]["found"] += 1
                    tally[scale]["right"] += found[best].mask.value == CLASSES[int(label)]
    return {
        "min_height": min_height,
        "frames": len(tally[scales[0]]["ms"]),
        "scales": {
            str(scale): {
                "faces": t["faces"],
                "recall": round(t["found"] / max(t["faces"], 1), 3),
                "accuracy_of_found": round(t["right"] / max(t["found"], 1), 3),
                "p50_ms": round(statistics.median(t["ms"]), 1) if t["ms"] else None,
            }
            for scale, t in tally.items()
        },
    }
