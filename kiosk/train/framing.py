"""Kiosk-framed variants of a VOC face set: faces as a gate camera sees them, in 640x480 frames.

For every sizeable face of a set (GT height >= ``min_face`` px; every ``without_mask`` and
``mask_weared_incorrect`` face, and up to ``max_with_mask`` of the largest ``with_mask`` faces an image,
so the rare classes are not drowned) one frame is made, deterministically (the random draws of a frame
come from a hash of the seed, the image name and the face's index):

- ``frame``: a window of the photo itself around the face, scaled so the face is ``face_px`` tall
  (drawn uniformly in 100..300 px, at most ``max_upscale`` x its size in the photo: a gate camera sees faces
  of that size at 0.5-1.5 m), the face placed near the middle; where the window runs off the photo, the
  photo is mirrored at its edge and that part blurred (a soft, plausible surround, never a black band).
  Every GT face that lands in the frame is annotated; a face is only used when it is the largest face of
  its frame (the gate reads the largest face).
- ``paste``: a tight crop of the face (its GT box with a 0-15 % margin, as face-crop datasets publish them)
  scaled the same way and pasted into a 640x480 background cut from another photo of the same set, whose
  own labelled faces are blurred away (they would be unlabelled faces in the frame) and which is slightly
  defocused as a whole. Only the pasted face is annotated.
- ``crop``: the tight crop alone (5-25 % margin), its long side at least 112 px: a face "as published"
  (the issue's withheld set has many such images). One face, annotated.

Each variant is written as a VOC folder (``images/*.png`` + ``annotations/*.xml`` + ``manifest.json``);
a box keeps its set's convention (face-tight for facemask, whole head for mask_wearing), so the set is
scored with the source set's IoU rule.

    dabai-kiosk eval frame --data ../shared/data/mask_wearing --split mask_wearing_check \
        --variant frame --out out/ood/frames/mask_wearing_check_frame
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

import cv2
import numpy as np

from kiosk.train.data import CLASSES, Annotation

FRAME_W, FRAME_H = 640, 480
VARIANTS = ("frame", "paste", "crop")
FACE_PX = (100.0, 300.0)
VERSION = 1  # bump when the generator's output changes (the cache key)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    key = ":".join(str(p) for p in (seed,) + parts).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))


def select_faces(ann: Annotation, min_face: float = 24.0, max_with_mask: int = 3) -> List[int]:
    """Indices of the faces of ``ann`` that get a frame: every sizeable face of a rare class, and the
    ``max_with_mask`` largest sizeable with_mask faces; largest first."""
    h = ann.boxes[:, 3] - ann.boxes[:, 1]
    order = [int(i) for i in np.argsort(-h, kind="stable") if h[i] >= min_face]
    masked = [i for i in order if ann.labels[i] == 0][:max_with_mask]
    return sorted([i for i in order if ann.labels[i] != 0] + masked, key=lambda i: -h[i])


def _face_height(rng: np.random.Generator, h: float, max_upscale: float) -> float:
    hi = min(FACE_PX[1], max_upscale * h)
    lo = min(FACE_PX[0], hi)
    return float(rng.uniform(lo, hi))


def _place(rng: np.random.Generator, bw: float, bh: float) -> Tuple[float, float]:
    """Centre of a bw x bh face in the frame: near the middle, a little above it, always inside."""
    cx = FRAME_W / 2 + rng.uniform(-100, 100)
    cy = FRAME_H * 0.45 + rng.uniform(-60, 60)
    cx = float(np.clip(cx, bw / 2 + 2, FRAME_W - bw / 2 - 2)) if bw < FRAME_W - 4 else FRAME_W / 2
    cy = float(np.clip(cy, bh / 2 + 2, FRAME_H - bh / 2 - 2)) if bh < FRAME_H - 4 else FRAME_H / 2
    return cx, cy


def _transform(boxes: np.ndarray, s: float, tx: float, ty: float) -> np.ndarray:
    return boxes * s + np.array([tx, ty, tx, ty], np.float32)


def _keep_inside(boxes: np.ndarray, w: int, h: int, min_inside: float = 0.6) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the frame and a mask of those with at least ``min_inside`` of their area inside."""
    c = boxes.copy()
    c[:, [0, 2]] = np.clip(c[:, [0, 2]], 0, w)
    c[:, [1, 3]] = np.clip(c[:, [1, 3]], 0, h)
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6) * np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    inside = np.maximum(c[:, 2] - c[:, 0], 0) * np.maximum(c[:, 3] - c[:, 1], 0)
    return c, inside / area >= min_inside


def frame_around(img: np.ndarray, ann: Annotation, i: int, rng: np.random.Generator, max_upscale: float = 6.0
                 ) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(640x480 frame, boxes, labels) with face ``i`` of the photo framed, or None when another face
    would be larger in the frame."""
    b = ann.boxes[i]
    bh = float(b[3] - b[1])
    s = _face_height(rng, bh, max_upscale) / bh
    cx, cy = _place(rng, (b[2] - b[0]) * s, bh * s)
    tx, ty = cx - s * (b[0] + b[2]) / 2, cy - s * (b[1] + b[3]) / 2
    m = np.array([[s, 0, tx], [0, s, ty]], np.float64)
    frame = cv2.warpAffine(img, m, (FRAME_W, FRAME_H), flags=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA,
                           borderMode=cv2.BORDER_REFLECT_101)
    inside = cv2.warpAffine(np.full(img.shape[:2], 255, np.uint8), m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if inside.min() < 255:  # mirrored surroundings: blurred, so they read as background
        blurred = cv2.GaussianBlur(frame, (0, 0), 6)
        a = cv2.GaussianBlur(inside, (0, 0), 3).astype(np.float32)[:, :, None] / 255.0
        frame = (frame * a + blurred * (1 - a)).round().astype(np.uint8)
    boxes, ok = _keep_inside(_transform(ann.boxes, s, tx, ty), FRAME_W, FRAME_H)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if (areas[ok] > areas[i] * 1.0001).any():
        return None
    return frame, boxes[ok], ann.labels[ok]


def _crop(img: np.ndarray, box: np.ndarray, margin: float) -> Tuple[np.ndarray, np.ndarray]:
    """The box grown by ``margin`` of its size on each side (clipped to the image), and the box inside it."""
    h, w = img.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x1, y1 = int(max(0, np.floor(box[0] - margin * bw))), int(max(0, np.floor(box[1] - margin * bh)))
    x2, y2 = int(min(w, np.ceil(box[2] + margin * bw))), int(min(h, np.ceil(box[3] + margin * bh)))
    return img[y1:y2, x1:x2], np.array([box[0] - x1, box[1] - y1, box[2] - x1, box[3] - y1], np.float32)


def background(img: np.ndarray, ann: Annotation, rng: np.random.Generator) -> np.ndarray:
    """A 640x480 cut of another photo, its labelled faces (grown by 25 %) blurred away."""
    img = img.copy()
    soft = cv2.GaussianBlur(img, (0, 0), 12)
    for b in ann.boxes:
        g = 0.25 * np.array([-(b[2] - b[0]), -(b[3] - b[1]), b[2] - b[0], b[3] - b[1]])
        x1, y1, x2, y2 = np.round(b + g).astype(int)
        x1, y1 = max(x1, 0), max(y1, 0)
        img[y1:max(y2, y1), x1:max(x2, x1)] = soft[y1:max(y2, y1), x1:max(x2, x1)]
    s = max(FRAME_W / img.shape[1], FRAME_H / img.shape[0]) * rng.uniform(1.0, 1.5)
    r = cv2.resize(img, (max(FRAME_W, int(np.ceil(img.shape[1] * s))), max(FRAME_H, int(np.ceil(img.shape[0] * s)))),
                   interpolation=cv2.INTER_LINEAR)
    x0 = int(rng.integers(0, r.shape[1] - FRAME_W + 1))
    y0 = int(rng.integers(0, r.shape[0] - FRAME_H + 1))
    # out of focus behind a near face, as a gate camera focused at arm's length sees it
    return cv2.GaussianBlur(np.ascontiguousarray(r[y0:y0 + FRAME_H, x0:x0 + FRAME_W]), (0, 0), 2.5)


def paste_into(img: np.ndarray, ann: Annotation, i: int, bg: np.ndarray, rng: np.random.Generator,
               max_upscale: float = 6.0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame, [box], [label]): the tight crop of face ``i`` pasted into ``bg`` (640x480)."""
    crop, inner = _crop(img, ann.boxes[i], float(rng.uniform(0.0, 0.15)))
    bh = float(inner[3] - inner[1])
    s = _face_height(rng, bh, max_upscale) / bh
    cw, ch = max(1, int(round(crop.shape[1] * s))), max(1, int(round(crop.shape[0] * s)))
    cw, ch = min(cw, FRAME_W), min(ch, FRAME_H)
    r = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
    sx, sy = cw / crop.shape[1], ch / crop.shape[0]
    cx, cy = _place(rng, cw, ch)
    x0, y0 = int(round(cx - cw / 2)), int(round(cy - ch / 2))
    x0, y0 = int(np.clip(x0, 0, FRAME_W - cw)), int(np.clip(y0, 0, FRAME_H - ch))
    frame = bg.copy()
    frame[y0:y0 + ch, x0:x0 + cw] = r
    box = np.array([[inner[0] * sx + x0, inner[1] * sy + y0, inner[2] * sx + x0, inner[3] * sy + y0]], np.float32)
    return frame, box, ann.labels[i:i + 1]


def crop_alone(img: np.ndarray, ann: Annotation, i: int, rng: np.random.Generator, min_side: int = 112
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, [box], [label]): the face's crop with a 5-25 % margin, upscaled to a ``min_side`` long side."""
    crop, inner = _crop(img, ann.boxes[i], float(rng.uniform(0.05, 0.25)))
    s = max(1.0, min_side / max(crop.shape[:2]))
    if s > 1:
        crop = cv2.resize(crop, (int(round(crop.shape[1] * s)), int(round(crop.shape[0] * s))),
                          interpolation=cv2.INTER_CUBIC)
        inner = inner * np.float32(s)
    return np.ascontiguousarray(crop), inner[None], ann.labels[i:i + 1]


def voc_xml(filename: str, w: int, h: int, boxes: np.ndarray, labels: Sequence[int], source: str = "") -> str:
    objs = "".join(
        "  <object>\n    <name>{}</name>\n    <bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax>"
        "</bndbox>\n  </object>\n".format(CLASSES[int(c)], *(int(round(float(v))) for v in b))
        for b, c in zip(boxes, labels))
    return ("<annotation>\n  <filename>{}</filename>\n  <source><image>{}</image></source>\n"
            "  <size><width>{}</width><height>{}</height><depth>3</depth></size>\n{}</annotation>\n").format(
        escape(filename), escape(source), w, h, objs)


def make_variant(data_dir: str, anns: Sequence[Annotation], variant: str, out_dir: str, seed: int = 0,
                 min_face: float = 24.0, max_with_mask: int = 3, max_upscale: float = 6.0) -> Dict[str, object]:
    """Write the ``variant`` of ``anns`` (images in ``data_dir/images``) to ``out_dir`` as a VOC folder;
    returns its manifest (also written as ``manifest.json``)."""
    from kiosk.train.evaluate import read_image

    if variant not in VARIANTS:
        raise ValueError("variant must be one of {}, got {!r}".format(", ".join(VARIANTS), variant))
    img_dir, ann_dir = os.path.join(out_dir, "images"), os.path.join(out_dir, "annotations")
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    names, counts, skipped = [], [0] * len(CLASSES), 0
    for k, a in enumerate(anns):
        img = read_image(os.path.join(data_dir, "images", a.image))
        if img is None or len(a.boxes) == 0:
            continue
        for i in select_faces(a, min_face, max_with_mask):
            rng = _rng(seed, variant, a.image, i)
            if variant == "frame":
                made = frame_around(img, a, i, rng, max_upscale)
                if made is None:
                    skipped += 1
                    continue
            elif variant == "paste":
                others = [j for j in range(len(anns)) if j != k]
                j = others[int(rng.integers(len(others)))] if others else k
                bg_img = read_image(os.path.join(data_dir, "images", anns[j].image))
                bg = background(bg_img if bg_img is not None else img, anns[j] if bg_img is not None else a, rng)
                made = paste_into(img, a, i, bg, rng, max_upscale)
            else:
                made = crop_alone(img, a, i, rng)
            frame, boxes, labels = made
            stem = "{}_f{:02d}".format(os.path.splitext(a.image)[0], i)
            cv2.imwrite(os.path.join(img_dir, stem + ".png"), frame)
            with open(os.path.join(ann_dir, stem + ".xml"), "w") as f:
                f.write(voc_xml(stem + ".png", frame.shape[1], frame.shape[0], boxes, labels, a.image))
            names.append(stem + ".png")
            counts[int(a.labels[i])] += 1
    manifest = {"variant": variant, "seed": seed, "min_face": min_face, "max_with_mask": max_with_mask,
                "max_upscale": max_upscale, "face_px": list(FACE_PX), "version": VERSION,
                "source": os.path.abspath(data_dir), "source_images": [a.image for a in anns],
                "frames": len(names), "framed_face_class": dict(zip(CLASSES, counts)),
                "skipped_not_largest": skipped}  # type: Dict[str, object]
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def cached_variant(data_dir: str, anns: Sequence[Annotation], variant: str, out_dir: str, seed: int = 0
                   ) -> Dict[str, object]:
    """:func:`make_variant` unless ``out_dir`` already holds the same variant of the same images and seed."""
    path = os.path.join(out_dir, "manifest.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                m = json.load(f)
            if (m.get("variant"), m.get("seed"), m.get("version"), m.get("source"), m.get("source_images")) == (
                    variant, seed, VERSION, os.path.abspath(data_dir), [a.image for a in anns]):
                return m
        except (OSError, ValueError):
            pass
    for sub in ("images", "annotations"):  # a stale cache: start clean
        d = os.path.join(out_dir, sub)
        if os.path.isdir(d):
            for fn in os.listdir(d):
                os.remove(os.path.join(d, fn))
    return make_variant(data_dir, anns, variant, out_dir, seed)
