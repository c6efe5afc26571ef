"""Dataset access for the mask model: Pascal VOC parsing, a deterministic split by image, hashing.

Kept Python 3.8 compatible (the evaluation code reuses it on the device).
"""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.vision.tracker import iou_matrix  # noqa: F401 (re-exported for the training code)

CLASSES = ("with_mask", "without_mask", "mask_weared_incorrect")
CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}
SPLITS = ("train", "val", "test")


@dataclass
class Annotation:
    image: str  # file name inside images/
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # x1 y1 x2 y2
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # index into CLASSES
    unknown: List[str] = field(default_factory=list)  # class names of objects not in CLASSES (skipped)


def _num(el: "ET.Element", tag: str) -> float:
    txt = el.findtext(tag) or ""
    m = re.search(r"-?\d+(?:\.\d+)?", txt)
    if m is None:
        raise ValueError("no number in <{}>".format(tag))
    return float(m.group(0))


def parse_voc(path: str) -> Annotation:
    """Parse one VOC XML file. Stray text between tags is ignored; a file that
    ElementTree cannot read is retried with non-XML junk lines removed."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        text = raw.decode("utf-8", "replace")
        text = "\n".join(ln for ln in text.splitlines() if "<" in ln or not ln.strip())
        text = re.sub(r">[^<]*?file:[^<]*<", "><", text)
        root = ET.fromstring(text)
    name = (root.findtext("filename") or "").strip()
    if not name:
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
    size = root.find("size")
    w = int(_num(size, "width")) if size is not None else 0
    h = int(_num(size, "height")) if size is not None else 0
    boxes = []  # type: List[Tuple[float, float, float, float]]
    labels = []  # type: List[int]
    unknown = []  # type: List[str]
    for obj in root.iter("object"):
        cls = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if cls not in CLASS_INDEX:
            unknown.append(cls)
            continue
        if bb is None:
            continue
        try:
            x1, y1, x2, y2 = (_num(bb, t) for t in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            continue
        if x2 <= x1 or y2 <= y1:
            continue
        boxes.append((x1, y1, x2, y2))
        labels.append(CLASS_INDEX[cls])
    return Annotation(
        image=name,
        width=w,
        height=h,
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        labels=np.asarray(labels, np.int64),
        unknown=unknown,
    )


def load_dataset(data_dir: str, problems: Optional[Dict[str, List[str]]] = None) -> List[Annotation]:
    """All annotations of ``data_dir`` (``images/`` + ``annotations/``) whose image exists, sorted by name.

    With ``problems`` given, XML files that cannot be parsed are skipped and listed under
    ``problems["unreadable_xml"]`` and annotations without an image under ``problems["no_image"]``;
    without it an unparsable XML file raises. A missing folder raises ``FileNotFoundError``.
    """
    ann_dir = os.path.join(data_dir, "annotations")
    img_dir = os.path.join(data_dir, "images")
    for d in (ann_dir, img_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError("not a VOC dataset folder: {} is missing".format(d))
    out = []
    for fn in sorted(os.listdir(ann_dir)):
        if not fn.lower().endswith(".xml"):
            continue
        try:
            a = parse_voc(os.path.join(ann_dir, fn))
        except (ET.ParseError, ValueError, OSError) as exc:
            if problems is None:
                raise
            problems.setdefault("unreadable_xml", []).append("{}: {}".format(fn, exc))
            continue
        if not os.path.exists(os.path.join(img_dir, a.image)):
            stem = os.path.splitext(fn)[0]
            cands = [stem + e for e in (".png", ".jpg", ".jpeg")]
            found = [c for c in cands if os.path.exists(os.path.join(img_dir, c))]
            if not found:
                if problems is not None:
                    problems.setdefault("no_image", []).append(fn)
                continue
            a.image = found[0]
        out.append(a)
    return out


def _stable_key(name: str, seed: int) -> str:
    return hashlib.sha256("{}:{}".format(seed, name).encode()).hexdigest()


def stratified_split(
    anns: Sequence[Annotation], fractions: Tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> Dict[str, List[str]]:
    """Deterministic split BY IMAGE, stratified on the rarest class an image contains
    (incorrect > without > with > none), so the rare class lands in every split."""
    strata = {}  # type: Dict[int, List[str]]
    for a in anns:
        key = int(a.labels.max()) if len(a.labels) else -1
        strata.setdefault(key, []).append(a.image)
    out = {s: [] for s in SPLITS}  # type: Dict[str, List[str]]
    for key in sorted(strata):
        names = sorted(strata[key], key=lambda n: _stable_key(n, seed))
        n = len(names)
        n_val = int(round(n * fractions[1]))
        n_test = int(round(n * fractions[2]))
        out["test"] += names[:n_test]
        out["val"] += names[n_test : n_test + n_val]
        out["train"] += names[n_test + n_val :]
    for s in SPLITS:
        out[s].sort()
    return out


def subsample(anns: Sequence[Annotation], names: Sequence[str], fraction: float, seed: int = 0) -> List[str]:
    """A deterministic ``fraction`` of ``names``, stratified like :func:`stratified_split` (each stratum
    keeps at least one image): smaller training sets for a learning curve."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1], got {!r}".format(fraction))
    rarest = {a.image: int(a.labels.max()) if len(a.labels) else -1 for a in anns}
    strata = {}  # type: Dict[int, List[str]]
    for n in names:
        strata.setdefault(rarest[n], []).append(n)
    out = []  # type: List[str]
    for key in sorted(strata):
        ordered = sorted(strata[key], key=lambda n: _stable_key(n, seed))
        out += ordered[: max(1, int(round(len(ordered) * fraction)))]
    return sorted(out)


def write_splits(splits: Dict[str, List[str]], out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for s in SPLITS:
        tmp = os.path.join(out_dir, s + ".txt.tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(splits[s]) + "\n")
        os.replace(tmp, os.path.join(out_dir, s + ".txt"))


def read_splits(split_dir: str) -> Dict[str, List[str]]:
    out = {}
    for s in SPLITS:
        with open(os.path.join(split_dir, s + ".txt")) as f:
            out[s] = [ln.strip() for ln in f if ln.strip()]
    return out


def dataset_sha256(data_dir: str) -> str:
    """sha256 over the sorted relative file list and every file's contents (images + annotations)."""
    h = hashlib.sha256()
    rels = []
    for sub in ("images", "annotations"):
        d = os.path.join(data_dir, sub)
        rels += [sub + "/" + fn for fn in os.listdir(d) if os.path.isfile(os.path.join(d, fn))]
    for rel in sorted(rels):
        h.update(rel.encode() + b"\0")
        with open(os.path.join(data_dir, rel), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()
