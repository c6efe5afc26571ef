"""The kiosk's detector and the two peer face-mask detectors behind one small interface.

Every model here answers ``predict(image_bgr) -> [(box, class, score)]``: ``box`` (x1, y1, x2, y2) in
image pixels, ``class`` one of :data:`kiosk.train.data.CLASSES` (``with_mask``, ``without_mask``,
``mask_weared_incorrect``), ``score`` the detection's confidence; the detections the model acts on, at its
own thresholds. ``predict_split`` also gives those down to :data:`AP_THRESHOLD` for AP (the same rule for
every model), with a flag for the ones it acts on. The out-of-distribution evaluation
(:mod:`kiosk.train.ood`) scores all of them the same way.

Peers (MIT, ``../shared/peers``, for comparison only; see its SOURCE.md). Both know only mask / no mask:

- :class:`UltraFaceMasked`: Linzaer's Ultra-Light-Fast-Generic-Face-Detector "RFB-640 masked_face v2"
  through ONNX Runtime: the whole image resized to 640x480, RGB, (x - 127) / 128; classes BACKGROUND /
  face / masked_face (softmax); per class, boxes with probability > 0.6 (its ``detect_imgs.py`` default),
  the best 200 (``candidate_size``), hard NMS at IoU 0.3 (its ``Predictor``). ``face`` -> without_mask,
  ``masked_face`` -> with_mask.
- :class:`AizooMask`: AIZOOTech FaceMaskDetection's Caffe SSD (260x260, RGB / 255, classes Mask / NoMask as
  sigmoids), decoded with its own anchors (:func:`aizoo_anchors`, :func:`aizoo_decode`) and its
  class-agnostic NMS (:func:`aizoo_nms`, confidence > 0.5, IoU 0.4: the defaults of its inference scripts).
  The network runs with OpenCV's ``cv2.dnn.readNetFromCaffe`` where the installed OpenCV has it (4.x);
  OpenCV 5 dropped the Caffe importer, so otherwise the same network (8 convolutions, ReLU, ceil-mode max
  pooling, the 20 head convolutions, sigmoid) runs in numpy from the same two files (:class:`CaffeSSD`).
  The two agree to float rounding (``tests/test_ood_eval.py`` when OpenCV 4 is present; checked once
  against opencv-python-headless 4.14 in a side install, engines/MODEL_CARD.md).

The kiosk: :class:`KioskModel` wraps :class:`kiosk.vision.mask.MaskDetector` (any mode); a face's class is
the classifier's arg-max, its score face score x class probability (as ``eval detector``).

Python 3.8 compatible (``kiosk.bench.vision`` imports :class:`UltraFaceMasked` from here).
"""

from __future__ import annotations

import os
import re
import struct
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from kiosk.train.data import CLASSES
from kiosk.vision.faces import nms

# Detections down to this score are kept for AP (as the kiosk's photo mode keeps faces down to 0.1); each
# model acts only on those above its own threshold (``predict``; ``predict_split`` says which).
AP_THRESHOLD = 0.1

Box = Tuple[float, float, float, float]
Prediction = Tuple[Box, str, float]  # (box, class in CLASSES, score)

PEERS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "..", "shared", "peers")
ULTRAFACE_FILE = os.path.join("ultraface", "RFB-640-masked_face-v2.onnx")
AIZOO_FILES = (os.path.join("aizoo", "face_mask_detection.prototxt"),
               os.path.join("aizoo", "face_mask_detection.caffemodel"))

WITH, WITHOUT, INCORRECT = CLASSES


def peers_dir() -> str:
    """``$DABAI_PEERS`` or ``../shared/peers`` beside the repository."""
    return os.path.normpath(os.environ.get("DABAI_PEERS") or PEERS_DIR)


def _as_predictions(boxes: np.ndarray, labels: Sequence[str], scores: np.ndarray) -> List[Prediction]:
    return [((float(b[0]), float(b[1]), float(b[2]), float(b[3])), str(c), float(s))
            for b, c, s in zip(boxes, labels, scores)]


# ----------------------------------------------------------------------------------------------- UltraFace


class UltraFaceMasked:
    """UltraFace RFB-640 masked_face v2: input [1,3,480,640] RGB (x-127)/128; scores [1,N,3]
    (background, face, masked_face), boxes [1,N,4] corner form, 0..1."""

    name = "ultraface"
    classes = 2
    LABELS = {1: "face", 2: "masked_face"}
    CLASS_OF = {1: WITHOUT, 2: WITH}

    def __init__(self, path: str, backend: str = "onnxruntime", threshold: float = 0.6, iou: float = 0.3,
                 candidate_size: int = 200, ap_threshold: float = AP_THRESHOLD) -> None:
        from kiosk.inference import load_model

        self.runner = load_model(path, backend)
        self.input = self.runner.input_names[0]
        self.threshold = threshold
        self.iou = iou
        self.candidate_size = candidate_size
        self.ap_threshold = ap_threshold

    def raw(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(scores (N,3), boxes (N,4) relative) of the network on ``frame_bgr``."""
        h, w = frame_bgr.shape[:2]
        image = cv2.resize(frame_bgr, (640, 480)) if (w, h) != (640, 480) else frame_bgr
        blob = (cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) - 127.0) / 128.0
        out = self.runner.run({self.input: np.ascontiguousarray(blob.transpose(2, 0, 1)[None])})
        return np.asarray(out["scores"][0], np.float32), np.asarray(out["boxes"][0], np.float32)

    def postprocess(self, scores: np.ndarray, boxes: np.ndarray, w: int, h: int, threshold: Optional[float] = None
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes in pixels, class index 1|2, probability), best first: per class, probability > ``threshold``
        (default its own), the ``candidate_size`` best, hard NMS (the repository's ``Predictor.predict``)."""
        out_b, out_c, out_s = [], [], []
        scale = np.array([w, h, w, h], np.float32)
        thr = self.threshold if threshold is None else threshold
        for c in (1, 2):
            p = scores[:, c]
            keep = np.nonzero(p > thr)[0]
            if len(keep) == 0:
                continue
            b = boxes[keep] * scale
            k = nms(b, p[keep], self.iou, top_k=self.candidate_size)
            out_b.append(b[k])
            out_c.append(np.full(len(k), c, np.int64))
            out_s.append(p[keep][k])
        if not out_b:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        b, c, s = np.concatenate(out_b), np.concatenate(out_c), np.concatenate(out_s)
        o = np.argsort(-s, kind="stable")
        return b[o], c[o], s[o]

    def detect(self, frame_bgr: np.ndarray) -> List[Any]:
        """[(box in pixels, "face" | "masked_face")], best first (``bench vision``'s call)."""
        h, w = frame_bgr.shape[:2]
        b, c, _ = self.postprocess(*self.raw(frame_bgr), w, h)
        return [(bb, self.LABELS[int(cc)]) for bb, cc in zip(b, c)]

    def predict_split(self, image_bgr: np.ndarray) -> Tuple[List[Prediction], List[bool]]:
        """Every detection above ``ap_threshold`` (for AP), and which of them pass its own threshold. NMS is
        greedy from the best box down, so the boxes above its threshold are exactly those it reports."""
        h, w = image_bgr.shape[:2]
        b, c, s = self.postprocess(*self.raw(image_bgr), w, h, min(self.ap_threshold, self.threshold))
        return _as_predictions(b, [self.CLASS_OF[int(x)] for x in c], s), [bool(x > self.threshold) for x in s]

    def predict(self, image_bgr: np.ndarray) -> List[Prediction]:
        h, w = image_bgr.shape[:2]
        b, c, s = self.postprocess(*self.raw(image_bgr), w, h)
        return _as_predictions(b, [self.CLASS_OF[int(x)] for x in c], s)


# ----------------------------------------------------------------------------------------------- AIZOO

AIZOO_FEATURE_MAPS = (33, 17, 9, 5, 3)
AIZOO_ANCHOR_SIZES = ((0.04, 0.056), (0.08, 0.11), (0.16, 0.22), (0.32, 0.45), (0.64, 0.72))
AIZOO_RATIOS = (1.0, 0.62, 0.42)
AIZOO_VARIANCES = (0.1, 0.1, 0.2, 0.2)
AIZOO_SIZE = 260


def aizoo_anchors(feature_maps: Sequence[int] = AIZOO_FEATURE_MAPS,
                  sizes: Sequence[Sequence[float]] = AIZOO_ANCHOR_SIZES,
                  ratios: Sequence[float] = AIZOO_RATIOS) -> np.ndarray:
    """(N, 4) anchors (x1, y1, x2, y2, relative), in the order of the network's outputs: per feature map,
    row by row, per cell every size at the first ratio, then the first size at each further ratio
    (``utils/anchor_generator.py``: 4 anchors a cell, 5972 in all)."""
    out = []
    for fm, sz in zip(feature_maps, sizes):
        c = (np.arange(fm, dtype=np.float64) + 0.5) / fm
        cx, cy = np.meshgrid(c, c)  # cx varies along a row
        wh = [(s * np.sqrt(ratios[0]), s / np.sqrt(ratios[0])) for s in sz]
        wh += [(sz[0] * np.sqrt(r), sz[0] / np.sqrt(r)) for r in ratios[1:]]
        half = np.array([[-w / 2, -h / 2, w / 2, h / 2] for w, h in wh])  # (A, 4)
        centers = np.stack([cx, cy, cx, cy], -1)[:, :, None, :]  # (fm, fm, 1, 4)
        out.append((centers + half[None, None]).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def aizoo_decode(anchors: np.ndarray, loc: np.ndarray, variances: Sequence[float] = AIZOO_VARIANCES) -> np.ndarray:
    """SSD decoding (``utils/anchor_decode.py``): centre offsets x variance x anchor size, log-sizes x
    variance; returns (N, 4) x1, y1, x2, y2 relative to the image."""
    a = np.asarray(anchors, np.float64)
    r = np.asarray(loc, np.float64).reshape(-1, 4) * np.asarray(variances, np.float64)
    acx, acy = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    cx, cy = r[:, 0] * aw + acx, r[:, 1] * ah + acy
    w, h = np.exp(r[:, 2]) * aw, np.exp(r[:, 3]) * ah
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


def aizoo_nms(boxes: np.ndarray, confidences: np.ndarray, conf_thresh: float = 0.5, iou_thresh: float = 0.4
              ) -> np.ndarray:
    """Indices into ``boxes`` kept by ``utils/nms.py`` ``single_class_non_max_suppression``: confidence >
    conf_thresh, greedy by confidence, areas with +1e-3, overlap = inter / union > iou_thresh suppressed."""
    keep_idx = np.nonzero(confidences > conf_thresh)[0]
    b, conf = boxes[keep_idx].astype(np.float64), confidences[keep_idx]
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1 + 1e-3) * (y2 - y1 + 1e-3)
    idxs = list(np.argsort(conf, kind="stable"))
    pick = []
    while idxs:
        i = idxs.pop()
        pick.append(i)
        if not idxs:
            break
        rest = np.asarray(idxs)
        w = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        overlap = inter / (area[i] + area[rest] - inter)
        idxs = [j for j, o in zip(idxs, overlap) if o <= iou_thresh]
    return keep_idx[np.asarray(pick, np.int64)] if pick else np.zeros(0, np.int64)


def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    v, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, i
        shift += 7


def _fields(buf: bytes) -> List[Tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message (varint / fixed / bytes)."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported protobuf wire type {}".format(wt))
        out.append((num, wt, v))
    return out


def _blob(buf: bytes) -> np.ndarray:
    """A caffe ``BlobProto``: float data (packed or not) shaped by ``shape`` or num/channels/height/width."""
    data, dims, legacy = [], [], {}  # type: List[np.ndarray], List[int], Dict[int, int]
    for num, wt, v in _fields(buf):
        if num == 5:
            data.append(np.frombuffer(v, "<f4") if wt == 2 else np.array(struct.unpack("<f", v), np.float32))
        elif num == 7:
            for n2, w2, v2 in _fields(v):
                if n2 == 1 and w2 == 2:
                    j = 0
                    while j < len(v2):
                        d, j = _varint(v2, j)
                        dims.append(d)
                elif n2 == 1:
                    dims.append(int(v2))
        elif num in (1, 2, 3, 4) and wt == 0:
            legacy[num] = int(v)
    arr = np.concatenate(data).astype(np.float32) if data else np.zeros(0, np.float32)
    shape = dims or [legacy.get(k, 1) for k in (1, 2, 3, 4)]
    return arr.reshape(shape)


def read_caffemodel(path: str) -> Dict[str, List[np.ndarray]]:
    """Layer name -> its weight blobs, from a binary ``.caffemodel`` (``NetParameter``: ``layer`` = 100,
    or the old ``layers`` = 2; a layer's name is field 1 / 4 and its blobs field 7 / 6)."""
    with open(path, "rb") as f:
        net = _fields(f.read())
    out = {}  # type: Dict[str, List[np.ndarray]]
    for num, wt, v in net:
        if wt != 2 or num not in (100, 2):
            continue
        name_field, blob_field = (1, 7) if num == 100 else (4, 6)
        name, blobs = "", []
        for n2, w2, v2 in _fields(v):
            if n2 == name_field and w2 == 2:
                name = v2.decode("utf-8", "replace")
            elif n2 == blob_field and w2 == 2:
                blobs.append(_blob(v2))
        if blobs:
            out[name] = blobs
    return out


def read_prototxt_layers(path: str) -> List[Dict[str, Any]]:
    """The ``layer { ... }`` blocks of a prototxt as flat dicts (name, type, bottom[], top[], and the
    numeric / enum parameters by key, repeated ones as lists): enough for a plain SSD."""
    with open(path) as f:
        text = f.read()
    layers = []
    for block in re.findall(r"layer\s*\{(.*?)\n\}", text, re.S):
        d = {"bottom": [], "top": []}  # type: Dict[str, Any]
        for key, val in re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|[^\s{}]+)", block):
            val = val.strip('"')
            if key in ("bottom", "top"):
                d[key].append(val)
            elif key in ("name", "type") and key not in d:
                d[key] = val
            else:
                try:
                    num = float(val)
                    parsed = int(num) if num.is_integer() else num  # type: Any
                except ValueError:
                    parsed = val
                d.setdefault(key, []).append(parsed)
        layers.append(d)
    return layers


def layer_param(layer: Dict[str, Any], key: str, default: Any) -> Any:
    """The first value of ``key`` in a layer of :func:`read_prototxt_layers`, else ``default``."""
    v = layer.get(key)
    return v[0] if v else default


def _conv(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], pad: int, stride: int) -> np.ndarray:
    """NCHW convolution (batch 1): a sum over the k x k kernel offsets of (O x C) @ (C x H'W') products."""
    c, h, wd = x.shape[1:]
    o, _, k, _ = w.shape
    xp = np.pad(x[0], ((0, 0), (pad, pad), (pad, pad))) if pad else x[0]
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    y = np.zeros((o, ho * wo), np.float32)
    for dy in range(k):
        for dx in range(k):
            v = xp[:, dy:dy + (ho - 1) * stride + 1:stride, dx:dx + (wo - 1) * stride + 1:stride]
            y += w[:, :, dy, dx] @ v.reshape(c, ho * wo)
    if b is not None:
        y += b[:, None]
    return y.reshape(1, o, ho, wo)


def _maxpool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """Caffe max pooling: output size ceil((H - k) / s) + 1 (the last window may hang over the edge)."""
    h, w = x.shape[2:]
    ho, wo = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    ph, pw = max((ho - 1) * s + k - h, 0), max((wo - 1) * s + k - w, 0)
    xp = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), constant_values=-np.inf)
    out = None  # the maximum over the k x k offsets, each a strided view (fast in numpy)
    for dy in range(k):
        for dx in range(k):
            v = xp[:, :, dy:dy + (ho - 1) * s + 1:s, dx:dx + (wo - 1) * s + 1:s]
            out = v.copy() if out is None else np.maximum(out, v, out=out)
    return out


class CaffeSSD:
    """The layers of the AIZOO prototxt (Convolution, ReLU, Pooling MAX, Permute, Reshape, Sigmoid, Concat)
    run in numpy with the weights of the ``.caffemodel``: ``forward(blob NCHW) -> {top: array}``."""

    def __init__(self, prototxt: str, caffemodel: str) -> None:
        self.layers = read_prototxt_layers(prototxt)
        self.weights = read_caffemodel(caffemodel)
        known = {"Convolution", "ReLU", "Pooling", "Permute", "Reshape", "Sigmoid", "Concat"}
        bad = sorted({str(ly.get("type")) for ly in self.layers} - known)
        if bad:
            raise ValueError("{}: layer types not supported here: {}".format(prototxt, ", ".join(bad)))

    def forward(self, blob: np.ndarray) -> Dict[str, np.ndarray]:
        t = {"data": np.asarray(blob, np.float32)}  # type: Dict[str, np.ndarray]
        for ly in self.layers:
            kind, x = ly["type"], t[ly["bottom"][0]]
            if kind == "Convolution":
                blobs = self.weights[ly["name"]]
                y = _conv(x, blobs[0], blobs[1] if len(blobs) > 1 else None, layer_param(ly, "pad", 0),
                          layer_param(ly, "stride", 1))
            elif kind == "ReLU":
                y = np.maximum(x, 0)
            elif kind == "Pooling":
                if layer_param(ly, "pool", "MAX") != "MAX":
                    raise ValueError("only MAX pooling is supported")
                y = _maxpool(x, layer_param(ly, "kernel_size", 2), layer_param(ly, "stride", 1))
            elif kind == "Permute":
                y = np.ascontiguousarray(x.transpose(ly["order"]))
            elif kind == "Reshape":
                dims = [x.shape[i] if d == 0 else d for i, d in enumerate(ly["dim"])]
                y = x.reshape(dims)
            elif kind == "Sigmoid":
                y = 1.0 / (1.0 + np.exp(-x))
            else:  # Concat
                y = np.concatenate([t[b] for b in ly["bottom"]], axis=layer_param(ly, "axis", 1))
            t[ly["top"][0]] = y.astype(np.float32, copy=False)
        return t


def has_caffe_importer() -> bool:
    return hasattr(cv2, "dnn") and hasattr(cv2.dnn, "readNetFromCaffe")


class AizooMask:
    """AIZOO FaceMaskDetection: SSD 260x260 RGB/255 -> loc [1,5972,4], cls [1,5972,2] (Mask, NoMask)."""

    name = "aizoo"
    classes = 2
    CLASS_OF = (WITH, WITHOUT)

    def __init__(self, prototxt: str, caffemodel: str, engine: str = "auto", conf_thresh: float = 0.5,
                 iou_thresh: float = 0.4, ap_threshold: float = AP_THRESHOLD) -> None:
        if engine == "auto":
            engine = "opencv" if has_caffe_importer() else "numpy"
        self.engine = engine
        if engine == "opencv":
            self.net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
        elif engine == "numpy":
            self.ssd = CaffeSSD(prototxt, caffemodel)
        else:
            raise ValueError("engine must be auto, opencv or numpy, got {!r}".format(engine))
        self.anchors = aizoo_anchors()
        self.conf_thresh = conf_thresh
        self.iou_thresh = iou_thresh
        self.ap_threshold = ap_threshold

    @staticmethod
    def blob(image_bgr: np.ndarray) -> np.ndarray:
        """(1,3,260,260) float32: resized, RGB, / 255 (``cv2.dnn.blobFromImage(rgb, 1/255, (260,260))``)."""
        rgb = cv2.cvtColor(cv2.resize(image_bgr, (AIZOO_SIZE, AIZOO_SIZE)), cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])

    def raw(self, image_bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(loc (5972,4), cls (5972,2)) of the network."""
        blob = self.blob(image_bgr)
        if self.engine == "opencv":
            self.net.setInput(blob)
            loc, cls = self.net.forward(["loc_branch_concat", "cls_branch_concat"])
        else:
            out = self.ssd.forward(blob)
            loc, cls = out["loc_branch_concat"], out["cls_branch_concat"]
        return np.asarray(loc, np.float32).reshape(-1, 4), np.asarray(cls, np.float32).reshape(-1, 2)

    def postprocess(self, loc: np.ndarray, cls: np.ndarray, w: int, h: int, conf_thresh: Optional[float] = None
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes in pixels, class index 0 Mask | 1 NoMask, confidence), best first."""
        boxes = aizoo_decode(self.anchors, loc)
        conf, label = cls.max(1), cls.argmax(1)
        keep = aizoo_nms(boxes, conf, self.conf_thresh if conf_thresh is None else conf_thresh, self.iou_thresh)
        b = np.clip(boxes[keep], 0.0, 1.0) * np.array([w, h, w, h], np.float32)  # clipped as its scripts do
        return b, label[keep], conf[keep]

    def predict_split(self, image_bgr: np.ndarray) -> Tuple[List[Prediction], List[bool]]:
        """Every detection above ``ap_threshold`` (for AP), and which of them pass its own threshold (NMS is
        greedy from the best box down: those are exactly the boxes it reports)."""
        h, w = image_bgr.shape[:2]
        b, c, s = self.postprocess(*self.raw(image_bgr), w, h, min(self.ap_threshold, self.conf_thresh))
        return _as_predictions(b, [self.CLASS_OF[int(x)] for x in c], s), [bool(x > self.conf_thresh) for x in s]

    def predict(self, image_bgr: np.ndarray) -> List[Prediction]:
        h, w = image_bgr.shape[:2]
        b, c, s = self.postprocess(*self.raw(image_bgr), w, h)
        return _as_predictions(b, [self.CLASS_OF[int(x)] for x in c], s)


# ----------------------------------------------------------------------------------------------- the kiosk


class KioskModel:
    """A :class:`kiosk.vision.mask.MaskDetector` as a model of this module: every face with its arg-max class,
    score = face score x that class's (calibrated) probability. ``operating_face_score``: the face score the
    kiosk acts on (``vision.face_score``); faces below it (photo mode keeps them for AP) are not acted on.
    With a calibrated classifier (its JSON sidecar: a temperature and the threshold above which an "incorrect"
    is sure), an "incorrect" below that threshold is marked not sure, as the gate reads it
    (:meth:`predict_full`)."""

    classes = 3

    def __init__(self, detector: Any, name: str = "kiosk", operating_face_score: float = 0.0) -> None:
        self.detector = detector
        self.name = name
        self.operating_face_score = float(operating_face_score)
        self.calibration = getattr(getattr(detector, "classifier", None), "calibration", None)

    def predict_full(self, image_bgr: np.ndarray) -> Tuple[List[Prediction], List[bool], List[bool]]:
        """(predictions, acted on, sure) of every face."""
        boxes, scores, probs, _ = self.detector.detect_arrays(image_bgr)
        if len(boxes) == 0:
            return [], [], []
        if self.calibration is not None:
            probs = self.calibration.apply(probs)
            sure = [bool(ok) for _, ok in self.calibration.readings(probs)]
        else:
            sure = [True] * len(boxes)
        lab = probs.argmax(1)
        face = np.asarray(scores, np.float32).reshape(-1)
        s = face * probs[np.arange(len(lab)), lab]
        preds = _as_predictions(np.asarray(boxes, np.float32), [CLASSES[int(i)] for i in lab], s)
        return preds, [bool(f >= self.operating_face_score) for f in face], sure

    def predict_split(self, image_bgr: np.ndarray) -> Tuple[List[Prediction], List[bool]]:
        preds, op, _ = self.predict_full(image_bgr)
        return preds, op

    def predict(self, image_bgr: np.ndarray) -> List[Prediction]:
        preds, op, _ = self.predict_full(image_bgr)
        return [p for p, ok in zip(preds, op) if ok]


def ultraface_available(peers: Optional[str] = None) -> bool:
    return os.path.isfile(os.path.join(peers or peers_dir(), ULTRAFACE_FILE))


def aizoo_available(peers: Optional[str] = None) -> bool:
    return all(os.path.isfile(os.path.join(peers or peers_dir(), f)) for f in AIZOO_FILES)


def peer_factories(peers: Optional[str] = None) -> Dict[str, Callable[[], Any]]:
    """name -> factory of the peers whose files are present in ``peers`` (default :func:`peers_dir`)."""
    d = peers or peers_dir()
    out = {}  # type: Dict[str, Callable[[], Any]]
    if ultraface_available(d):
        out["ultraface"] = lambda: UltraFaceMasked(os.path.join(d, ULTRAFACE_FILE))
    if aizoo_available(d):
        out["aizoo"] = lambda: AizooMask(*(os.path.join(d, f) for f in AIZOO_FILES))
    return out
