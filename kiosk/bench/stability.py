"""How often the kiosk's mask state would flip on a frame sequence: per frame vs. voted over frames.

Each sequence is one still scene turned into ``frames`` camera frames, each perturbed a little as
a live camera does from frame to frame (blur, exposure, noise, JPEG, a small shift and zoom;
seeded). Scenes: the demo faces (two people × three mask classes), and with ``data_dir`` the
faces of the dataset's test split that are big enough to be a kiosk user (box height ≥ 48 px).
Each frame goes through the kiosk's detector; the face is followed by overlap with its known box,
and the mask state is the decision core's own vote (``voted_mask``, the configured window).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from kiosk.config import PolicyConfig
from kiosk.core.events import Mask
from kiosk.core.machine import voted_mask
from kiosk.demo.scenes import Shot, render
from kiosk.vision.tracker import iou_matrix

PEOPLE = ("person1", "person2")
MIN_FACE = 48


def perturb(frame: np.ndarray, rng: np.random.Generator, geometric: bool = True) -> np.ndarray:
    h, w = frame.shape[:2]
    out = frame
    if geometric:
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-4, 4), rng.uniform(0.93, 1.07))
        matrix[:, 2] += rng.uniform(-10, 10, size=2)
        out = cv2.warpAffine(out, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.3:  # motion blur: the person moves
        k = int(rng.integers(5, 13))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        out = cv2.filter2D(out, -1, kernel)
    sigma = rng.uniform(0, 3.0)
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    out = out.astype(np.float32) * rng.uniform(0.55, 1.3) + rng.uniform(-30, 30)
    out += rng.normal(0, rng.uniform(0, 10), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out


Scene = Tuple[str, np.ndarray, np.ndarray, Mask, bool]  # name, image, face box, true class, geometric jitter


def demo_scenes(detector: Any) -> Iterator[Scene]:
    for person in PEOPLE:
        for mask in (Mask.WITH, Mask.WITHOUT, Mask.INCORRECT):  # the model's classes (not UNSURE)
            frame = render([Shot(0, 1, person=(person, mask.value))], 1)[0]
            found = detector.detect(frame)
            if found:
                yield "{}/{}".format(person, mask.value), frame, np.array(found[0].box, np.float32), mask, True


def dataset_scenes(data_dir: str, split_file: str) -> Iterator[Scene]:
    from kiosk.train.data import CLASSES, parse_voc

    with open(split_file, encoding="utf-8") as fh:
        names = [line.strip() for line in fh if line.strip()]
    for name in names:
        stem = os.path.splitext(name)[0]
        ann = parse_voc(os.path.join(data_dir, "annotations", stem + ".xml"))
        image = cv2.imread(os.path.join(data_dir, "images", ann.image), cv2.IMREAD_COLOR)
        if image is None:
            continue
        for box, label in zip(ann.boxes, ann.labels):
            if box[3] - box[1] >= MIN_FACE:
                yield "{}#{}".format(stem, int(box[0])), image, box, Mask(CLASSES[int(label)]), False


def _flips(states: List[Optional[Mask]]) -> int:
    known = [s for s in states if s is not None]
    return sum(1 for a, b in zip(known, known[1:]) if a != b)


def run_stability_bench(
    detector: Any,
    frames: int = 30,
    seed: int = 0,
    policy: PolicyConfig = PolicyConfig(),
    data_dir: Optional[str] = None,
    split_file: Optional[str] = None,
) -> Dict[str, Any]:
    rng = np.random.default_rng(seed)
    scenes = list(demo_scenes(detector))
    if data_dir and split_file:
        scenes += list(dataset_scenes(data_dir, split_file))
    rows = []
    for name, image, box, truth, geometric in scenes:
        votes: Tuple[Mask, ...] = ()
        voted: Optional[Mask] = None
        raw: List[Optional[Mask]] = []
        smooth: List[Optional[Mask]] = []
        for _ in range(frames):
            detections = detector.detect(perturb(image, rng, geometric))
            label = None
            if detections:
                overlap = iou_matrix(np.array([d.box for d in detections], np.float32), box[None])[:, 0]
                best = int(overlap.argmax())
                if overlap[best] >= 0.3:
                    label = detections[best].mask
                    if detections[best].confidence >= policy.min_confidence:
                        votes = (votes + (label,))[-policy.vote_window :]
            voted = voted_mask(votes, voted, policy)
            raw.append(label)
            smooth.append(voted)
        rows.append({
            "scene": name, "truth": truth.value, "source": "demo" if geometric else "dataset",
            "raw": raw, "voted": smooth, "truth_mask": truth,
        })
    return {
        "frames_per_scene": frames,
        "vote": {"window": policy.vote_window, "min": policy.vote_min, "min_confidence": policy.min_confidence},
        "demo": _summary([r for r in rows if r["source"] == "demo"]),
        "dataset": _summary([r for r in rows if r["source"] == "dataset"]),
    }


def _summary(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    if not rows:
        return {"scenes": 0}
    n = sum(len(r["raw"]) for r in rows)
    raw_flips = sum(_flips(r["raw"]) for r in rows)
    voted_flips = sum(_flips(r["voted"]) for r in rows)
    return {
        "scenes": len(rows),
        "frames": n,
        "face_found_rate": round(sum(1 for r in rows for x in r["raw"] if x is not None) / n, 3),
        "raw_flips_per_100_frames": round(100.0 * raw_flips / n, 2),
        "voted_flips_per_100_frames": round(100.0 * voted_flips / n, 2),
        "scenes_with_raw_flips": sum(1 for r in rows if _flips(r["raw"])),
        "scenes_with_voted_flips": sum(1 for r in rows if _flips(r["voted"])),
        "raw_accuracy": round(sum(1 for r in rows for x in r["raw"] if x == r["truth_mask"]) / n, 3),
        "voted_accuracy": round(sum(1 for r in rows for x in r["voted"] if x == r["truth_mask"]) / n, 3),
    }
