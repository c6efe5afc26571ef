"""Train the kiosk's mask classifier (3 classes) on face crops of a Pascal VOC face-mask dataset.

    python -m kiosk.train.mask_classifier --data ../shared/data/facemask \
        --face-model ../shared/models/yunet/yunet_n_dynamic.onnx --out engines --work out/train_mask

What it does:
- deterministic split BY IMAGE, stratified on the rarest class of each image, written to
  ``<out>/splits/{train,val,test}.txt`` (test is never used for training or model selection);
- training crops are the kiosk's own crops (:func:`kiosk.vision.mask.crop_boxes`) of GT boxes with
  scale/shift jitter, plus YuNet boxes (with the kiosk's box correction) matched to GT boxes,
  so the classifier sees what the detector hands it at run time;
- augmentation: horizontal flip, brightness/contrast/saturation/grey, low-resolution blur, noise;
- the rare ``mask_weared_incorrect`` class: oversampling (inverse-frequency^0.5 sampling) and a
  class-weighted loss (inverse-frequency^0.5 weights);
- checkpoints every epoch in ``<work>/last.pt`` (``--resume`` continues), best-by-validation
  (balanced accuracy) in ``<work>/best.pt``; tqdm progress; a training-curve PNG;
- ONNX export (opset 13, input ``input`` [batch,3,64,64], output ``probs`` [batch,3]) checked
  against the torch model with onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from kiosk.train.data import CLASSES, iou_matrix, load_dataset, read_splits, stratified_split, subsample, write_splits
from kiosk.vision.mask import CROP_MARGIN, CROP_SIZE, MEAN, STD, crop_boxes

ONNX_NAME = "mask_classifier.onnx"
SPLIT_SEED = 0  # engines/splits/ was made with it
EXTRA_MIN_IOU = 0.3  # detector boxes vs whole-head GT boxes (mask_wearing's scoring rule)
CURVE_NAME = "mask_classifier_curve.png"


# ----------------------------------------------------------------------------------------- data
class CropSet:
    """Face boxes of a set of images, kept in memory with their images."""

    def __init__(self) -> None:
        self.images = []  # type: List[np.ndarray]
        self.img_idx = []  # type: List[int]
        self.boxes = []  # type: List[np.ndarray]
        self.labels = []  # type: List[int]
        self.source = []  # type: List[str]  # "gt", "yunet" or "synthetic"
        self.landmarks = []  # type: List[Optional[np.ndarray]]  # (5,2) frame pixels, for synthetic masks
        self.paint = []  # type: List[int]  # 0, or synthetic_masks.CORRECT / INCORRECT

    def add(self, img_i: int, box: np.ndarray, label: int, source: str,
            landmarks: Optional[np.ndarray] = None, paint: int = 0) -> None:
        self.img_idx.append(img_i)
        self.boxes.append(np.asarray(box, np.float32))
        self.labels.append(int(label))
        self.source.append(source)
        self.landmarks.append(None if landmarks is None else np.asarray(landmarks, np.float32))
        self.paint.append(int(paint))

    def __len__(self) -> int:
        return len(self.labels)

    def extend(self, other: "CropSet") -> None:
        """Append ``other``'s images and crops (their image indices shifted)."""
        off = len(self.images)
        self.images.extend(other.images)
        self.img_idx.extend(i + off for i in other.img_idx)
        for name in ("boxes", "labels", "source", "landmarks", "paint"):
            getattr(self, name).extend(getattr(other, name))

    @property
    def label_array(self) -> np.ndarray:
        return np.asarray(self.labels, np.int64)


# Detector settings whose boxes become training crops: the kiosk's live setting and the photo mode
# the dataset is evaluated in (kiosk.vision.mask.MODES), so the classifier sees both kinds of box.
DETECTOR_SETTINGS = ({"score_threshold": 0.5, "min_long_side": 640}, {"score_threshold": 0.1, "min_long_side": 800})


def build_set(data_dir: str, names: List[str], face_model: Optional[str] = None, min_iou: float = 0.4,
              box_correction: Union[str, Sequence[float], None] = None, synthetic: bool = False,
              extra_face_models: Sequence[str] = (), gt_crops: bool = True, det_source: str = "yunet") -> CropSet:
    """GT boxes of ``names``, plus (with ``face_model``) that detector's boxes, under each of
    :data:`DETECTOR_SETTINGS`, matched to a GT box at IoU >= ``min_iou``. ``box_correction``: the
    detector's correction; None = the one that goes with the model file (:func:`kiosk.vision.faces.box_correction_for`:
    its JSON sidecar, else learned). ``extra_face_models``: more detectors whose boxes are added the
    same way, each with its own file's correction. ``synthetic``: every ``without_mask`` GT face a
    detector found is added twice more with a painted mask (:mod:`kiosk.train.synthetic_masks`), worn
    correctly (label with_mask) and wrongly (label mask_weared_incorrect). ``gt_crops`` False: detector
    boxes only (a set whose GT boxes follow another convention, e.g. mask_wearing's whole heads);
    ``det_source``: the source tag of the detector crops."""
    from kiosk.train.synthetic_masks import CORRECT, INCORRECT

    anns = {a.image: a for a in load_dataset(data_dir)}
    dets = []
    if face_model:
        from kiosk.vision.faces import FaceDetector, box_correction_for

        corr = box_correction_for(face_model) if box_correction is None else box_correction
        models = [(face_model, corr)] + [(m, box_correction_for(m)) for m in extra_face_models]
        dets = [FaceDetector(m, box_correction=c, **kw) for m, c in models for kw in DETECTOR_SETTINGS]  # type: ignore[arg-type]
    cs = CropSet()
    for name in names:
        a = anns[name]
        img = cv2.imread(os.path.join(data_dir, "images", name), cv2.IMREAD_COLOR)
        if img is None:
            continue
        cs.images.append(img)
        i = len(cs.images) - 1
        for b, lab in zip(a.boxes, a.labels) if gt_crops else ():
            cs.add(i, b, lab, "gt")
        if not len(a.boxes):
            continue
        gt_landmarks = {}  # type: Dict[int, Tuple[float, np.ndarray]]  # GT index -> (best IoU, its landmarks)
        for det in dets:
            boxes, _, kps = det.detect_arrays(img)
            if not len(boxes):
                continue
            iou = iou_matrix(boxes, a.boxes)
            for j in range(len(boxes)):
                g = int(np.argmax(iou[j]))
                if iou[j, g] >= min_iou:
                    cs.add(i, boxes[j], a.labels[g], det_source)
                    if g not in gt_landmarks or iou[j, g] > gt_landmarks[g][0]:
                        gt_landmarks[g] = (float(iou[j, g]), kps[j])
        if synthetic:
            for g, (_, kp) in sorted(gt_landmarks.items(), key=lambda item: item[0]):
                if CLASSES[a.labels[g]] == "without_mask":
                    cs.add(i, a.boxes[g], CLASSES.index("with_mask"), "synthetic", kp, CORRECT)
                    cs.add(i, a.boxes[g], CLASSES.index("mask_weared_incorrect"), "synthetic", kp, INCORRECT)
    return cs


def series_block(name: str) -> Tuple[str, int]:
    """mask_wearing's photo series: images ``mw_<part>_NNN`` in blocks of four source numbers
    (engines/splits/MASK_WEARING.md)."""
    stem = os.path.splitext(os.path.basename(name))[0]
    part, num = stem.rsplit("_", 1)
    return part, (int(num) - 1) // 4


def split_blocks(names: Sequence[str], every: int = 5) -> Tuple[List[str], List[str]]:
    """``names`` -> (fit, select): every ``every``-th series block (in order of first appearance, the 5th,
    10th, ...) to ``select``, the rest to ``fit``: a 4:1 split that keeps each photo series on one side."""
    order = []  # type: List[Tuple[str, int]]
    for n in names:
        if series_block(n) not in order:
            order.append(series_block(n))
    chosen = set(order[every - 1::every])
    return [n for n in names if series_block(n) not in chosen], [n for n in names if series_block(n) in chosen]


def jitter_box(
    box: np.ndarray, rng: np.random.RandomState, shift: float = 0.08, scale: Tuple[float, float] = (0.85, 1.2)
) -> np.ndarray:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + rng.uniform(-shift, shift) * w
    cy = (y1 + y2) / 2 + rng.uniform(-shift, shift) * h
    s = math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
    ar = math.exp(rng.uniform(-0.1, 0.1))
    nw, nh = w * s * ar, h * s / ar
    return np.array([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], np.float32)


# ``augment`` (issue 12): how often a training crop is cut tight (the face fills it, as in a close-up or a
# published face crop), gets sunglasses, a flat band below the chin, or (unmasked faces only) a hand over the mouth.
TIGHT_P, TIGHT_SCALE = 0.25, (0.6, 0.9)
SUNGLASSES_P, CHIN_BAND_P, HAND_P = 0.1, 0.1, 0.3


def occlude(crop: np.ndarray, face: Tuple[float, float, float, float], label: int, painted: bool,
            rng: np.random.RandomState) -> np.ndarray:
    """The ``augment`` occluders on one (S,S,3) BGR 0..255 crop whose face box is ``face`` (crop pixels);
    labels never change: sunglasses and a band below the chin say nothing about the mask, a hand is no mask."""
    from kiosk.train.synthetic_masks import paint_chin_band, paint_hand, paint_sunglasses

    if rng.rand() < SUNGLASSES_P:
        crop = paint_sunglasses(crop, face, rng)
    if rng.rand() < CHIN_BAND_P:
        crop = paint_chin_band(crop, face, rng)
    if CLASSES[label] == "without_mask" and not painted and rng.rand() < HAND_P:
        crop = paint_hand(crop, face, rng)
    return crop


def make_batch(cs: CropSet, idx: np.ndarray, rng: Optional[np.random.RandomState], size: int = CROP_SIZE,
               augment: bool = False, mask_styles: bool = False) -> np.ndarray:
    """(B,3,S,S) float32 in 0..1, RGB (not yet normalized). ``rng`` None = no geometric augmentation.
    ``augment`` (with ``rng``): tight crops and occluders (:func:`occlude`); False draws exactly the random
    numbers it always drew, so earlier models retrain the same. ``mask_styles``: painted masks in every style of
    :data:`kiosk.train.synthetic_masks.STYLES`, with ear loops (False: the pleated mask as before)."""
    from kiosk.train.synthetic_masks import crop_landmarks, paint_mask

    out = np.empty((len(idx), size, size, 3), np.float32)
    for k, i in enumerate(idx):
        box = cs.boxes[i]
        if rng is not None:
            tight = augment and rng.rand() < TIGHT_P
            box = jitter_box(box, rng, scale=TIGHT_SCALE) if tight else jitter_box(box, rng)
        out[k] = crop_boxes(cs.images[cs.img_idx[i]], box[None], size, CROP_MARGIN)[0]
        if cs.paint[i]:
            paint_rng = rng if rng is not None else np.random.RandomState(i)
            m = size * CROP_MARGIN / (1 + 2 * CROP_MARGIN)  # the face box inside its crop
            lm = crop_landmarks(cs.landmarks[i], box, size, CROP_MARGIN)  # type: ignore[arg-type]
            out[k] = paint_mask(out[k], lm, (m, m, size - m, size - m), cs.paint[i], paint_rng, mask_styles)
        if rng is not None and augment:
            face = crop_landmarks(cs.boxes[i].reshape(2, 2), box, size, CROP_MARGIN).ravel()
            out[k] = occlude(out[k], tuple(float(v) for v in face), cs.labels[i], bool(cs.paint[i]), rng)  # type: ignore[arg-type]
        if rng is not None and rng.rand() < 0.5:
            out[k] = out[k, :, ::-1]
    return np.ascontiguousarray(out[..., ::-1].transpose(0, 3, 1, 2) / 255.0)


def photometric(x, gen, strong: bool = False):  # type: ignore[no-untyped-def]
    """Colour / resolution augmentation on a (B,3,S,S) 0..1 torch batch. ``strong`` (issue 12) first adds
    lighting: gamma, a colour cast (white balance), and low light with sensor noise."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]

    def u(lo: float, hi: float):  # type: ignore[no-untyped-def]
        return torch.empty(b, 1, 1, 1).uniform_(lo, hi, generator=gen)

    if strong:
        x = x.clamp(1e-4, 1) ** torch.exp(u(math.log(0.5), math.log(2.0)))  # gamma 0.5..2
        x = x * torch.empty(b, 3, 1, 1).uniform_(0.85, 1.15, generator=gen)  # colour cast
        dark = (torch.rand(b, 1, 1, 1, generator=gen) < 0.15).float()  # dim light: dark and noisy
        x = dark * (x * u(0.15, 0.45) + torch.randn(x.shape, generator=gen) * 0.03) + (1 - dark) * x

    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * u(0.6, 1.4)  # saturation
    m = x.mean((1, 2, 3), keepdim=True)
    x = m + (x - m) * u(0.7, 1.3)  # contrast
    x = x * u(0.65, 1.35)  # brightness
    g = (torch.rand(b, 1, 1, 1, generator=gen) < 0.1).float()  # some cameras are grey
    x = g * x.mean(1, keepdim=True).expand_as(x) + (1 - g) * x
    lowres = torch.rand(b, generator=gen) < 0.3  # small / blurry faces
    if lowres.any():
        s = x.shape[-1]
        r = int(torch.randint(12, 33, (1,), generator=gen))
        y = F.interpolate(x[lowres], size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        x[lowres] = F.interpolate(y, size=(s, s), mode="bilinear", align_corners=False)
    x = x + torch.randn(x.shape, generator=gen) * 0.02
    return x.clamp(0, 1)


# ---------------------------------------------------------------------------------------- model
def build_model(num_classes: int = 3, width: int = 1, fused: bool = False):  # type: ignore[no-untyped-def]
    """The from-scratch CNN. ``fused``: each convolution with a bias and no batch norm, the form the ONNX
    export has (batch norm folded in), so an exported model's weights load into it (:func:`load_onnx_weights`)."""
    import torch.nn as nn

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        norm = nn.Identity() if fused else nn.BatchNorm2d(cout)
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=fused), norm, nn.ReLU(inplace=True))

    c = [24, 32, 48, 48, 96, 96, 128]
    c = [v * width for v in c]
    return nn.Sequential(
        block(3, c[0], 2),  # 32
        block(c[0], c[1], 1),
        block(c[1], c[2], 2),  # 16
        block(c[2], c[3], 1),
        block(c[3], c[4], 2),  # 8
        block(c[4], c[5], 1),
        block(c[5], c[6], 2),  # 4
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(c[6], num_classes),
    )


def load_onnx_weights(model, path: str) -> None:  # type: ignore[no-untyped-def]
    """Put the weights of an exported classifier (``path``: Conv ... Gemm, batch norm folded) into a
    ``build_model(fused=True)`` of the same width, and check that both give the same probabilities."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    g = onnx.load(path).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    onnx_convs = [n for n in g.node if n.op_type == "Conv"]
    onnx_gemms = [n for n in g.node if n.op_type == "Gemm"]
    if len(convs) != len(onnx_convs) or len(linears) != 1 or len(onnx_gemms) != 1:
        raise ValueError("{} does not have this network's layers".format(path))
    with torch.no_grad():
        for m, n in zip(convs, onnx_convs):
            m.weight.copy_(torch.from_numpy(init[n.input[1]].copy()))
            m.bias.copy_(torch.from_numpy(init[n.input[2]].copy()))
        n = onnx_gemms[0]
        trans_b = any(a.name == "transB" and a.i for a in n.attribute)
        w = init[n.input[1]]
        linears[0].weight.copy_(torch.from_numpy((w if trans_b else w.T).copy()))
        linears[0].bias.copy_(torch.from_numpy(init[n.input[2]].copy()))
        x = torch.rand(4, 3, CROP_SIZE, CROP_SIZE) * 4 - 2
        mine = torch.softmax(model.eval()(x), 1).numpy()
    theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {g.input[0].name: x.numpy()})[0]
    if not np.allclose(mine, theirs, atol=1e-4):
        raise ValueError("weights of {} loaded but the outputs differ by {:.2g}".format(path, np.abs(mine - theirs).max()))


def yunet_classifier(face_model: str, num_classes: int = 3):  # type: ignore[no-untyped-def]
    """The pretrained backbone and neck of a YuNet face detector (``face_model``, run as a torch module
    by :mod:`kiosk.train.onnx_graph`, every weight trainable) on face crops, its three neck outputs
    pooled into one linear layer: a face-pretrained representation instead of a network from
    scratch. Takes the kiosk's classifier input (RGB, ``(x/255 - MEAN)/STD``) and feeds YuNet what it
    was trained on (BGR, 0..255)."""
    import torch
    from torch import nn

    from kiosk.train.onnx_graph import OnnxModule

    class YuNetCrops(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            body = OnnxModule(face_model)
            convs: Dict[str, int] = {}
            for op, ins, _, _ in body.nodes:
                if op == "Conv":
                    convs[ins[0]] = convs.get(ins[0], 0) + 1
            # the neck's outputs are the tensors the detection heads (cls, obj, bbox, kps) all read
            feats = [t for t, n in convs.items() if n >= 3]
            last = max(i for i, (_, _, outs, _) in enumerate(body.nodes) if outs[0] in feats)
            body.nodes = body.nodes[: last + 1]
            body.output_names = feats
            self.body = body
            with torch.no_grad():
                width = sum(int(v.shape[1]) for v in body(torch.zeros(1, 3, 64, 64)).values())
            self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(width, num_classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            bgr = torch.flip(x * STD + MEAN, dims=[1]) * 255.0
            out = self.body(bgr)
            return self.head(torch.cat([v.mean(dim=(2, 3)) for v in out.values()], 1))

    return YuNetCrops()


def aizoo_classifier(caffemodel: str, num_classes: int = 3):  # type: ignore[no-untyped-def]
    """The trunk of the AIZOO FaceMaskDetection SSD (MIT; ``caffemodel`` and its ``.prototxt`` beside it: eight
    3x3 conv + ReLU layers with max pooling, trained on WIDER FACE + MAFA to tell masked from unmasked faces) up
    to its stride-32 level, with that level's pretrained classification branch (``cls_2_insert_conv2d``, the
    level whose anchors are 42-57 px, a kiosk crop's face), average-pooled into one new linear layer: the peer
    as a teacher of features (issue 12). Takes the kiosk's classifier input (RGB, ``(x/255 - MEAN)/STD``) and
    feeds the trunk what it was trained on (RGB / 255)."""
    import torch
    from torch import nn

    from kiosk.train.peers import layer_param, read_caffemodel, read_prototxt_layers

    prototxt = os.path.splitext(caffemodel)[0] + ".prototxt"
    layers = {ly["name"]: ly for ly in read_prototxt_layers(prototxt)}
    weights = read_caffemodel(caffemodel)
    trunk = ["conv2d_%d" % i for i in range(6)]

    def conv(name: str) -> nn.Conv2d:
        w, b = weights[name][0], weights[name][1]
        c = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=int(layer_param(layers[name], "pad", 0)),
                      stride=int(layer_param(layers[name], "stride", 1)))
        with torch.no_grad():
            c.weight.copy_(torch.from_numpy(np.asarray(w, np.float32)))
            c.bias.copy_(torch.from_numpy(np.asarray(b, np.float32).reshape(-1)))
        return c

    class AizooCrops(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            mods = []  # type: List[nn.Module]
            for i, name in enumerate(trunk):
                mods += [conv(name), nn.ReLU()]
                if i < len(trunk) - 1:  # maxpool2d_0..4 follow conv2d_0..4; conv2d_5's pool feeds level 3
                    mods.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            mods += [conv("cls_2_insert_conv2d"), nn.ReLU()]
            self.body = nn.Sequential(*mods)
            self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, num_classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x * STD + MEAN).mean(dim=(2, 3)))

    return AizooCrops()


class Teacher:
    """An exported classifier as a teacher: model input (N,3,S,S) -> log-probabilities (N,3), through the
    kiosk's own :class:`kiosk.vision.mask.MaskClassifier` (its raw probabilities: no calibration)."""

    def __init__(self, path: str, crop_size: int, threads: int = 1) -> None:
        from kiosk.inference import load_model
        from kiosk.vision.mask import MaskClassifier

        runner = load_model(path, "onnxruntime", intra_op_threads=threads)
        self.classifier = MaskClassifier(path, runner=runner)
        if self.classifier.size != crop_size:
            raise ValueError("teacher {} reads {} px crops, the student {} px".format(path, self.classifier.size, crop_size))

    def log_probs(self, batch: np.ndarray) -> np.ndarray:
        p = self.classifier.probabilities(np.ascontiguousarray(batch, np.float32))
        return np.log(np.clip(p, 1e-8, 1.0)).astype(np.float32)


def distill_loss(student_logits, teacher_log_probs, temperature: float):  # type: ignore[no-untyped-def]
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, batch mean (Hinton et al. 2015)."""
    import torch.nn.functional as F

    t = float(temperature)
    return F.kl_div(F.log_softmax(student_logits / t, 1), F.log_softmax(teacher_log_probs / t, 1),
                    log_target=True, reduction="batchmean") * t * t


# ------------------------------------------------------------------------------------- metrics
def confusion(y: np.ndarray, p: np.ndarray, k: int = 3) -> np.ndarray:
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (y, p), 1)
    return m


def summarize(y: np.ndarray, p: np.ndarray) -> Dict[str, object]:
    m = confusion(y, p)
    rec = m.diagonal() / np.maximum(m.sum(1), 1)
    return {
        "n": int(len(y)),
        "accuracy": float((y == p).mean()) if len(y) else 0.0,
        "balanced_accuracy": float(rec[m.sum(1) > 0].mean()) if len(y) else 0.0,
        "recall": {c: float(r) for c, r in zip(CLASSES, rec)},
        "support": {c: int(s) for c, s in zip(CLASSES, m.sum(1))},
        "confusion": m.tolist(),
    }


def predict(model, cs: CropSet, batch: int = 256, size: int = CROP_SIZE) -> Tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    import torch
    import torch.nn.functional as F

    model.eval()
    preds, loss, n = [], 0.0, len(cs)
    y = torch.from_numpy(cs.label_array)
    with torch.no_grad():
        for s in range(0, n, batch):
            idx = np.arange(s, min(n, s + batch))
            x = (torch.from_numpy(make_batch(cs, idx, None, size)) - MEAN) / STD
            z = model(x)
            loss += float(F.cross_entropy(z, y[idx], reduction="sum"))
            preds.append(z.argmax(1).numpy())
    return (np.concatenate(preds) if preds else np.zeros(0, np.int64)), loss / max(n, 1)


class ValDetections:
    """The VAL split as the evaluation sees it: the face detector's boxes in photo mode
    (:data:`kiosk.vision.mask.MODES`) and their crops, so that each epoch's end-to-end mAP@0.5 costs
    one forward pass. Model selection by this figure picks the classifier for the detector it runs with."""

    def __init__(self, data_dir: str, names: List[str], face_model: str,
                 box_correction: Union[str, Sequence[float], None] = None, size: int = CROP_SIZE) -> None:
        from kiosk.train.evaluate import load_eval_set, read_image
        from kiosk.vision.faces import FaceDetector, box_correction_for
        from kiosk.vision.mask import MODES, to_model_input

        mode = MODES["photo"]
        corr = box_correction_for(face_model) if box_correction is None else box_correction
        det = FaceDetector(face_model, box_correction=corr, score_threshold=float(mode["face_score_threshold"]),  # type: ignore[arg-type]
                           min_long_side=int(mode["min_long_side"]))  # type: ignore[call-overload]
        anns, _ = load_eval_set(data_dir, names)
        self.anns, self.boxes, self.scores, crops = [], [], [], []  # type: ignore[var-annotated]
        for a in anns:
            img = read_image(os.path.join(data_dir, "images", a.image))
            if img is None:
                continue
            b, sc, _ = det.detect_arrays(img)
            self.anns.append(a)
            self.boxes.append(b)
            self.scores.append(sc)
            crops.append(to_model_input(crop_boxes(img, b, size, CROP_MARGIN)))
        self.x = np.concatenate(crops) if crops else np.zeros((0, 3, size, size), np.float32)
        self.counts = [len(b) for b in self.boxes]

    def evaluate(self, model) -> Dict[str, object]:  # type: ignore[no-untyped-def]
        """mAP@0.5 and AP@0.5 per class, single-label, classifier averaged over each crop and its mirror."""
        import torch

        from kiosk.train.evaluate import detection_ap, summarize_ap, to_detections

        model.eval()
        probs = []
        with torch.no_grad():
            for s in range(0, len(self.x), 512):
                x = torch.from_numpy(self.x[s : s + 512])
                p = torch.softmax(model(x), 1) + torch.softmax(model(torch.flip(x, dims=[3])), 1)
                probs.append((p / 2).numpy())
        p_all = np.concatenate(probs) if probs else np.zeros((0, 3), np.float32)
        raws, k = [], 0
        for b, sc, n in zip(self.boxes, self.scores, self.counts):
            raws.append({"boxes": b, "scores": sc, "probs": p_all[k : k + n]})
            k += n
        return summarize_ap(detection_ap(self.anns, to_detections(raws, False), (0.5,)))


class GateViews:
    """Issue 12's choice views (:func:`kiosk.train.ood.default_sets` with split "val": facemask VAL and
    mask_wearing_train, each as photos and as ``frame`` / ``paste`` / ``crop`` kiosk frames) as the gate sees
    them: the live detector's faces (:func:`kiosk.cli.evaluate.kiosk_factories`) and their crops, found once,
    so that each epoch's mean gate balanced accuracy over the eight views costs one forward pass."""

    def __init__(self, face_model: str, size: int = CROP_SIZE, frames_root: str = os.path.join("out", "ood", "frames"),
                 log: Optional[Callable[[str], None]] = None) -> None:
        from kiosk.cli.evaluate import kiosk_factories
        from kiosk.config import Config
        from kiosk.models.selection import mask_model_file
        from kiosk.train import ood
        from kiosk.train.evaluate import load_eval_set, read_image
        from kiosk.vision.faces import box_correction_for
        from kiosk.vision.mask import to_model_input

        vision = Config().vision
        # the gate's detector; its classifier (the shipped one) is loaded but never asked here
        live = kiosk_factories(face_model, mask_model_file("", face_model), box_correction_for(face_model),
                               "onnxruntime", vision.face_score, vision.detect_scale)["kiosk_live"]()
        det = live.detector  # type: ignore[attr-defined]

        def faces_of(s: "ood.EvalSet") -> Tuple[list, list, list]:
            anns, _ = load_eval_set(s.data_dir, s.names)
            kept, dets, crops = [], [], []
            for a in anns:
                img = read_image(os.path.join(s.data_dir, "images", a.image))
                if img is None:
                    continue
                b, sc, _ = det.find_faces(img)
                kept.append(a)
                dets.append((b, sc))
                crops.append(to_model_input(crop_boxes(img, b, size, CROP_MARGIN)))
            return kept, dets, crops

        self.sets = []  # type: List[Tuple[object, list, list, Optional[list], np.ndarray]]
        fits = {}  # type: Dict[str, Tuple[float, float, float, float]]  # head conversion per fitting set, fitted once
        for s in ood.default_sets(ood.SETS, split="val", frames_root=frames_root, log=log):
            anns, dets, crops = faces_of(s)
            converted = None
            if s.head_boxes and s.convert_fit is not None:
                if s.convert_fit.name not in fits:
                    fa, fd, _ = faces_of(s.convert_fit)
                    fits[s.convert_fit.name] = ood.fit_box_conversion(
                        fa, [self._dets(b, sc, None) for b, sc in fd], s.convert_fit.iou)[0]
                conv = fits[s.convert_fit.name]
                converted = [ood.convert_boxes(self._dets(b, sc, None), conv) for b, sc in dets]
            x = np.concatenate(crops) if crops else np.zeros((0, 3, size, size), np.float32)
            self.sets.append((s, anns, dets, converted, x))
            if log is not None:
                log("gate view {}: {} images, {} faces".format(s.name, len(anns), len(x)))

    @staticmethod
    def _dets(boxes: np.ndarray, scores: np.ndarray, probs: Optional[np.ndarray]) -> Dict[str, np.ndarray]:
        n = len(boxes)
        lab = probs.argmax(1) if probs is not None else np.zeros(n, np.int64)
        return {"boxes": np.asarray(boxes, np.float32).reshape(n, 4), "labels": lab.astype(np.int64),
                "scores": np.asarray(scores, np.float32).reshape(n), "op": np.ones(n, bool), "sure": np.ones(n, bool)}

    def evaluate(self, model) -> Dict[str, object]:  # type: ignore[no-untyped-def]
        """Mean over the views of the gate's balanced mask / no-mask accuracy (the classifier's own arg-max, no
        calibration) and of masked faces called "incorrect"; per view too."""
        import torch

        from kiosk.train import ood

        model.eval()
        per = {}  # type: Dict[str, Dict[str, object]]
        for s, anns, dets, converted, x in self.sets:
            with torch.no_grad():
                p = np.concatenate([torch.softmax(model(torch.from_numpy(x[i : i + 512])), 1).numpy()
                                    for i in range(0, len(x), 512)]) if len(x) else np.zeros((0, 3), np.float32)
            ds, k = [], 0
            for b, sc in dets:
                pk = p[k : k + len(b)]
                ds.append(self._dets(b, sc * pk.max(1), pk))
                k += len(b)
            per[s.name] = ood.image_level(anns, ds, s.iou, converted)  # type: ignore[attr-defined]
        return {"gate_bal_acc": float(np.mean([r["balanced_accuracy"] for r in per.values()])),
                "gate_masked_incorrect": float(np.mean([r["masked_called_incorrect"] for r in per.values()])),
                "views": per}


# -------------------------------------------------------------------------------------- export
def export_onnx(model, path: str, size: int = CROP_SIZE) -> None:  # type: ignore[no-untyped-def]
    """``model`` (logits) -> ONNX with softmax probabilities, checked against torch before ``path`` is replaced."""
    import torch

    try:
        import onnx  # noqa: F401
    except ImportError:
        # The TorchScript exporter only needs the `onnx` package to splice custom onnxscript
        # functions into the graph; this model has none, so the serialized bytes are final.
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

        onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes

    wrapped = model.eval() if getattr(model, "outputs_probabilities", False) else torch.nn.Sequential(
        model, torch.nn.Softmax(dim=1)).eval()
    from kiosk.train.export import flush_module_denormals, replace_if_matches

    flush_module_denormals(wrapped)
    tmp = path + ".tmp"
    torch.onnx.export(
        wrapped,
        (torch.zeros(1, 3, size, size),),
        tmp,
        dynamo=False,
        opset_version=13,
        input_names=["input"],
        output_names=["probs"],
        dynamic_axes={"input": {0: "batch"}, "probs": {0: "batch"}},
        do_constant_folding=True,
    )
    # check with onnxruntime against torch before replacing the previous file
    x = (torch.rand(4, 3, size, size) * 4 - 2).numpy()
    replace_if_matches(wrapped, tmp, path, x, "input")


def mean_of(checkpoints: Sequence[str]):  # type: ignore[no-untyped-def]
    """One module whose output is the mean of the softmax probabilities of the classifiers in
    ``checkpoints`` (``best.pt`` files of :func:`train`): an ensemble that exports as one ONNX file
    with the same input and output as a single classifier."""
    import torch

    class MeanOfClassifiers(torch.nn.Module):
        outputs_probabilities = True

        def __init__(self, members: List[torch.nn.Module]) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.softmax(m(x), 1) for m in self.members]).mean(0)

    members = []
    for path in checkpoints:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        m = build_model(width=int(ck.get("width", 1)), fused=bool(ck.get("fused", False)))
        m.load_state_dict(ck["model"])
        members.append(m.eval())
    return MeanOfClassifiers(members).eval()


def plot_curve(history: List[Dict[str, float]], path: str) -> None:
    from kiosk.train.plots import plot_training

    plot_training(history, path,
                  [("train_loss", "train loss (weighted, augmented)"), ("val_loss", "val loss")],
                  [("val_acc", "val accuracy"), ("val_bal_acc", "val balanced accuracy"),
                   ("val_rec_incorrect", "val recall incorrect"), ("val_map50", "val mAP@0.5 (detector + classifier)")])


# ---------------------------------------------------------------------------------------- train
def train(
    data_dir: str,
    out_dir: str = "engines",
    epochs: int = 40,
    work_dir: str = "out/train_mask",
    face_model: Optional[str] = None,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    resume: bool = False,
    threads: int = 2,
    progress: bool = True,
    box_correction: Union[str, Sequence[float], None] = None,
    onnx_name: str = ONNX_NAME,
    synthetic: bool = True,
    samples_per_epoch: int = 4096,
    extra_face_models: Sequence[str] = (),
    width: int = 1,
    train_fraction: float = 1.0,
    crop_size: int = CROP_SIZE,
    backbone: str = "",
    extra_data: Sequence[Tuple[str, str]] = (),
    extra_weight: float = 1.0,
    augment: bool = False,
    init_onnx: str = "",
    mask_styles: bool = False,
    synthetic_weight: float = 1.0,
    teacher: str = "",
    distill_alpha: float = 0.7,
    distill_temperature: float = 2.0,
    select_on_gate_views: bool = False,
    min_val_map: float = 0.0,
) -> Dict[str, object]:
    """Train, select on validation, export ``<out_dir>/<onnx_name>`` (default ``mask_classifier.onnx``)
    and its curve ``<out_dir>/<onnx stem>_curve.png``; returns a report dict. ``box_correction`` goes
    to the ``face_model`` detector (None = the one its sidecar names, else learned).

    With ``face_model`` the epoch kept is the one with the best end-to-end VAL mAP@0.5 of that detector
    plus this classifier (:class:`ValDetections`); without it, the best VAL balanced accuracy on GT crops.
    ``synthetic``: add painted-mask crops (:mod:`kiosk.train.synthetic_masks`; needs ``face_model``
    for landmarks). ``extra_face_models``: more detectors whose matched boxes become training crops.
    Each epoch draws ``samples_per_epoch`` crops, class-balanced, with replacement. ``train_fraction``
    below 1 trains on that stratified part of the train split only (a learning curve; val is unchanged).
    ``crop_size``: the side of the square input; the kiosk reads it from the exported model.
    ``backbone``: a YuNet ONNX whose pretrained backbone replaces the network from scratch
    (:func:`yunet_classifier`; it trains at a tenth of ``lr``, the new layer at ``lr``).

    Issue 12 (all off by default, so the documented commands retrain the shipped models):
    ``extra_data``: (VOC folder, image-list file) pairs, e.g. mask_wearing's training part, whose images
    give crops of ``face_model``'s (and ``extra_face_models``') boxes matched to their GT at IoU >= 0.3
    (:data:`EXTRA_MIN_IOU`; no GT crops, no painted masks: their GT boxes are whole heads);
    ``extra_weight``: their sampling weight relative to a facemask crop of the same class;
    ``augment``: tight crops, occluders (:func:`occlude`) and lighting (``photometric(strong=True)``);
    ``init_onnx``: start from this exported classifier's weights (:func:`load_onnx_weights`: the network
    without batch norm, as exported) instead of from scratch: a fine-tune of a shipped model;
    ``mask_styles``: painted masks of every style (surgical, KN95, cup respirator, printed cloth; ear loops);
    ``synthetic_weight``: the sampling weight of a painted crop relative to a real one of the same class;
    ``teacher``: an exported classifier (e.g. the slower ``engines/mask_classifier_aizoo.onnx``) whose
    probabilities on the very same augmented crops the network learns too (knowledge distillation, Hinton et
    al. 2015; one consistent view for teacher and student, Beyer et al. 2022): the loss is
    ``(1 - distill_alpha) * cross-entropy + distill_alpha * T^2 * KL(teacher_T || student_T)`` at
    temperature T = ``distill_temperature``. The student keeps its own size and speed;
    ``select_on_gate_views``: keep the epoch with the best mean gate balanced accuracy over issue 12's eight
    choice views (:class:`GateViews`; needs ``face_model``) instead of the best VAL mAP@0.5 alone, among the
    epochs whose VAL mAP@0.5 is at least ``min_val_map`` (the Kaggle-style figure must not be traded away)."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(work_dir, exist_ok=True)
    curve_name = os.path.splitext(onnx_name)[0] + "_curve.png"
    t_start = time.time()

    anns = load_dataset(data_dir)
    split_dir = os.path.join(out_dir, "splits")
    splits = stratified_split(anns, seed=SPLIT_SEED)  # the committed split, whatever the training seed
    if os.path.exists(os.path.join(split_dir, "train.txt")):
        if read_splits(split_dir) != splits:
            raise RuntimeError("{} differs from the split this data gives; delete it to re-split".format(split_dir))
    write_splits(splits, split_dir)

    print("building crops (train: GT{} ; val: GT)".format(" + matched YuNet boxes" if face_model else ""), flush=True)
    if face_model:
        from kiosk.vision.faces import box_correction_for

        box_correction = box_correction_for(face_model) if box_correction is None else box_correction
        print("detector crops: {} with box correction {!r}".format(face_model, box_correction), flush=True)
    train_names = splits["train"] if train_fraction >= 1.0 else subsample(anns, splits["train"], train_fraction)
    print("train images: {} of {}".format(len(train_names), len(splits["train"])), flush=True)
    tr = build_set(data_dir, train_names, face_model, box_correction=box_correction, synthetic=synthetic,
                   extra_face_models=extra_face_models)
    for extra_dir, list_file in extra_data:
        with open(list_file) as f:
            extra_names = [ln.strip() for ln in f if ln.strip()]
        ex = build_set(extra_dir, extra_names, face_model, min_iou=EXTRA_MIN_IOU, box_correction=box_correction,
                       extra_face_models=extra_face_models, gt_crops=False, det_source="extra")
        print("extra crops from {} ({} images): {}".format(extra_dir, len(extra_names),
              dict(zip(CLASSES, np.bincount(ex.label_array, minlength=3).tolist()))), flush=True)
        tr.extend(ex)
    va = build_set(data_dir, splits["val"], None)
    val_det = ValDetections(data_dir, splits["val"], face_model, box_correction, crop_size) if face_model else None
    select_by = "val_map50" if val_det is not None else "val_bal_acc"
    gate = None
    if select_on_gate_views:
        if not face_model:
            raise ValueError("selecting on the gate views needs the face model")
        gate = GateViews(face_model, crop_size, log=lambda line: print(line, flush=True))
        select_by = "gate_bal_acc"
    ytr = tr.label_array
    counts = np.bincount(ytr, minlength=3).astype(np.float64)
    print("train crops per class:", dict(zip(CLASSES, counts.astype(int).tolist())),
          "sources:", {s: tr.source.count(s) for s in ("gt", "yunet", "synthetic", "extra")},
          "| val:", np.bincount(va.label_array, minlength=3).tolist())
    inv = (counts.sum() / np.maximum(counts, 1)) ** 0.5
    src = np.asarray(tr.source)
    sample_w = inv[ytr] * np.where(src == "extra", extra_weight, 1.0) * np.where(src == "synthetic", synthetic_weight, 1.0)
    sample_w = sample_w / sample_w.sum()
    class_w = torch.tensor(inv / (inv * counts / counts.sum()).sum(), dtype=torch.float32)

    if backbone.endswith(".caffemodel"):
        model = aizoo_classifier(backbone)
    else:
        model = yunet_classifier(backbone) if backbone else build_model(width=width, fused=bool(init_onnx))
    if init_onnx:
        load_onnx_weights(model, init_onnx)
        print("initialized from", init_onnx, flush=True)
    groups = ([{"params": model.body.parameters(), "lr": lr / 10}, {"params": model.head.parameters()}] if backbone
              else [{"params": model.parameters()}])
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=5e-4)
    teach = Teacher(teacher, crop_size, threads) if teacher else None
    if teach is not None:
        print("distilling {} (alpha {}, T {})".format(teacher, distill_alpha, distill_temperature), flush=True)
    steps_per_epoch = int(math.ceil(samples_per_epoch / batch_size))
    total = epochs * steps_per_epoch
    warm = steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    history = []  # type: List[Dict[str, float]]
    start_epoch, best = 0, -1.0
    last_path = os.path.join(work_dir, "last.pt")
    best_path = os.path.join(work_dir, "best.pt")
    if resume and os.path.exists(last_path):
        ck = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start_epoch, best, history = ck["epoch"], ck["best"], ck["history"]
        print("resumed from {} at epoch {}".format(last_path, start_epoch), flush=True)

    for epoch in range(start_epoch, epochs):
        rng = np.random.RandomState(seed * 1000 + epoch)
        gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = rng.choice(len(tr), size=steps_per_epoch * batch_size, replace=True, p=sample_w)
        model.train()
        run_loss, seen = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc="epoch {}/{}".format(epoch + 1, epochs), disable=not progress, leave=False)
        for step in bar:
            for g in opt.param_groups:  # the pretrained backbone's group at a tenth (see above)
                g["lr"] = lr_at(epoch * steps_per_epoch + step) * g.setdefault("scale", g["lr"] / lr)
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = photometric(torch.from_numpy(make_batch(tr, idx, rng, crop_size, augment, mask_styles)), gen, augment)
            x = (x - MEAN) / STD
            y = torch.from_numpy(ytr[idx])
            logits = model(x)
            loss = F.cross_entropy(logits, y, weight=class_w, label_smoothing=0.05)
            if teach is not None:
                loss = (1 - distill_alpha) * loss + distill_alpha * distill_loss(
                    logits, torch.from_numpy(teach.log_probs(x.numpy())), distill_temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run_loss += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss="{:.3f}".format(run_loss / seen))
        pv, vloss = predict(model, va, size=crop_size)
        sm = summarize(va.label_array, pv)
        rec = sm["recall"]  # type: ignore[index]
        h = {
            "epoch": epoch + 1,
            "train_loss": run_loss / max(seen, 1),
            "val_loss": vloss,
            "val_acc": float(sm["accuracy"]),  # type: ignore[arg-type]
            "val_bal_acc": float(sm["balanced_accuracy"]),  # type: ignore[arg-type]
            "val_rec_incorrect": float(rec["mask_weared_incorrect"]),  # type: ignore[index]
        }
        if val_det is not None:
            ap = val_det.evaluate(model)
            h["val_map50"] = float(ap["map50"] or 0.0)  # type: ignore[arg-type]
            h.update({"val_ap50_" + c: float(v or 0.0) for c, v in ap["ap50"].items()})  # type: ignore[union-attr]
        if gate is not None:
            g = gate.evaluate(model)
            h["gate_bal_acc"], h["gate_masked_incorrect"] = g["gate_bal_acc"], g["gate_masked_incorrect"]  # type: ignore[assignment]
        h["elapsed_s"] = time.time() - t_start
        history.append(h)
        improved = h[select_by] > best and h.get("val_map50", 1.0) >= min_val_map
        if improved:
            best = h[select_by]
            torch.save({"model": model.state_dict(), "epoch": epoch + 1, "val": sm, "width": width, "fused": bool(init_onnx),
                        "val_detection": {k: v for k, v in h.items() if k.startswith("val_")}}, best_path)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1, "best": best,
                    "history": history}, last_path + ".tmp")
        os.replace(last_path + ".tmp", last_path)
        print("epoch {:3d} train_loss {:.3f} val_loss {:.3f} val_acc {:.3f} val_bal_acc {:.3f} "
              "rec_incorrect {:.2f} val_mAP50 {}{}{} ({:.0f}s)".format(
            h["epoch"], h["train_loss"], h["val_loss"], h["val_acc"], h["val_bal_acc"], h["val_rec_incorrect"],
            "{:.3f}".format(h["val_map50"]) if "val_map50" in h else "-",
            " gate {:.4f} masked->incorrect {:.4f}".format(h["gate_bal_acc"], h["gate_masked_incorrect"])
            if "gate_bal_acc" in h else "", " *" if improved else "", h["elapsed_s"]),
              flush=True)
        plot_curve(history, os.path.join(out_dir, curve_name))

    if not os.path.exists(best_path):
        raise RuntimeError("no epoch reached VAL mAP@0.5 {} (--min-val-map); nothing to export".format(min_val_map))
    ck = torch.load(best_path, map_location="cpu", weights_only=False)
    model.load_state_dict(ck["model"])
    model.eval()
    onnx_path = os.path.join(out_dir, onnx_name)
    export_onnx(model, onnx_path, crop_size)
    report = {
        "onnx": onnx_path,
        "onnx_bytes": os.path.getsize(onnx_path),
        "best_epoch": ck["epoch"],
        "selected_by": select_by,
        "val": ck["val"],
        "val_detection": ck.get("val_detection"),
        "synthetic": synthetic,
        "samples_per_epoch": samples_per_epoch,
        "epochs": epochs,
        "train_images": len(train_names),
        "crop_size": crop_size,
        "backbone": backbone or None,
        "train_crops": {c: int(n) for c, n in zip(CLASSES, counts)},
        "train_sources": {s: tr.source.count(s) for s in ("gt", "yunet", "synthetic", "extra")},
        "extra_data": [list(e) for e in extra_data],
        "extra_weight": extra_weight,
        "teacher": teacher or None,
        "distill": {"alpha": distill_alpha, "temperature": distill_temperature} if teacher else None,
        "augment": augment,
        "mask_styles": mask_styles,
        "synthetic_weight": synthetic_weight,
        "init_onnx": init_onnx or None,
        "face_model": face_model,
        "extra_face_models": list(extra_face_models),
        "box_correction": box_correction if isinstance(box_correction, (str, type(None))) else list(box_correction),
        "train_time_s": round(time.time() - t_start, 1),
        "params": int(sum(p.numel() for p in model.parameters())),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "command": (" ".join(["python -m kiosk.train.mask_classifier"] + sys.argv[1:])
                    if sys.argv and "mask_classifier" in sys.argv[0] else None),
    }
    with open(os.path.join(work_dir, "train_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report


SELECT_VARIANTS = ("", "frame", "paste", "crop")


def evaluate_selection(mask_models: Sequence[str], face_model: str = "engines/face_detector.onnx",
                       data_dir: str = os.path.join("..", "shared", "data", "mask_wearing"),
                       names_file: str = os.path.join("engines", "splits", "mask_wearing_select.txt"),
                       frames_root: str = os.path.join("out", "ood", "frames"),
                       log: Optional[Callable[[str], None]] = None) -> Dict[str, Dict[str, Dict[str, object]]]:
    """Model choice on held-out mask_wearing photos (``names_file``: the selection part, never trained on):
    each classifier in ``mask_models`` with ``face_model``, photo mode and the gate's live settings, on the
    photos (IoU 0.3) and their kiosk-framed variants (:mod:`kiosk.train.framing`), scored by
    :func:`kiosk.train.ood.score_set`. Returns model -> "kiosk"/"kiosk_live" -> set -> report."""
    from kiosk.cli.evaluate import kiosk_factories
    from kiosk.config import VisionConfig
    from kiosk.train import ood
    from kiosk.train.evaluate import load_eval_set
    from kiosk.train.framing import cached_variant
    from kiosk.vision.faces import box_correction_for

    with open(names_file) as f:
        names = [ln.strip() for ln in f if ln.strip()]
    stem = os.path.splitext(os.path.basename(names_file))[0]
    base = ood.EvalSet(stem, data_dir, names, 0.3, True)
    sets = [base]
    anns, _ = load_eval_set(data_dir, names)
    for variant in SELECT_VARIANTS[1:]:
        folder = os.path.join(frames_root, "{}_{}".format(stem, variant))
        cached_variant(data_dir, anns, variant, folder, 0)
        sets.append(ood.EvalSet("{}_{}".format(stem, variant), folder, None, 0.3, True))
    v = VisionConfig()
    out = {}  # type: Dict[str, Dict[str, Dict[str, object]]]
    for m in mask_models:
        facs = kiosk_factories(face_model, m, box_correction_for(face_model), "onnxruntime", v.face_score, v.detect_scale)
        out[m] = {k: ood.evaluate_sets(fac, sets, log) for k, fac in facs.items()}
    return out


def selection_table(result: Dict[str, Dict[str, Dict[str, object]]]) -> str:
    """One markdown row per classifier, mode and set: image-level balanced accuracy, masked -> "incorrect"
    (arg-max), no face found, face recall and class accuracy at IoU 0.3."""
    rows = ["| classifier | mode | set | images / faces | image bal. acc. | masked → incorrect | no face | face recall "
            "| class acc. | found called incorrect |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m, modes in result.items():
        for mode, sets in modes.items():
            for name, r in sets.items():
                im, fo = r["image"], r["found"]  # type: ignore[index]
                rows.append("| {} | {} | {} | {} / {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} |".format(
                    m, mode, name, r["images"], r["faces"], im["balanced_accuracy"] or 0,  # type: ignore[index]
                    im["masked_called_incorrect"] or 0, im["no_face_rate"] or 0, fo["recall"] or 0,  # type: ignore[index]
                    fo["class_accuracy"] or 0, fo["called_incorrect"] or 0))  # type: ignore[index]
    return "\n".join(rows)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="VOC folder with images/ and annotations/ (needed to train)")
    ap.add_argument("--out", default="engines", help="where the ONNX model, splits/ and the curve go")
    ap.add_argument("--work", default="out/train_mask", help="checkpoints and report")
    ap.add_argument("--face-model", default=None,
                    help="the detector the classifier will run with: its boxes matched to GT become training crops, "
                         "and the epoch kept is the one with the best VAL mAP@0.5 of the pair")
    ap.add_argument("--extra-crops-from", action="append", default=[], metavar="ONNX",
                    help="another face detector whose matched boxes are added as training crops (repeatable)")
    ap.add_argument("--box-correction", default=None,
                    help="box correction of --face-model: learned, constant, identity or 4 comma-separated fractions "
                         "(default: its JSON sidecar's, else learned)")
    ap.add_argument("--onnx-name", default=ONNX_NAME, help="file name of the exported model in --out")
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--samples-per-epoch", type=int, default=4096, help="crops drawn per epoch (class-balanced)")
    ap.add_argument("--no-synthetic", action="store_true", help="no painted-mask crops")
    ap.add_argument("--width", type=int, default=1, help="channel multiplier of the CNN (1: 278k parameters)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backbone", default="", metavar="ONNX",
                    help="fine-tune this pretrained backbone as the classifier: a YuNet face detector's (ONNX) or the "
                         "AIZOO mask detector's trunk (its .caffemodel, the .prototxt beside it); default: from scratch")
    ap.add_argument("--crop-size", type=int, default=CROP_SIZE, help="input side in pixels (the kiosk reads it from the model)")
    ap.add_argument("--train-fraction", type=float, default=1.0,
                    help="train on this stratified part of the train split (learning curve); val/test unchanged")
    ap.add_argument("--extra-data", action="append", default=[], metavar="DIR=LIST",
                    help="a VOC folder and a file listing its images to add as detector-box crops (IoU 0.3, no GT crops), "
                         "e.g. ../shared/data/mask_wearing=engines/splits/mask_wearing_fit.txt (repeatable)")
    ap.add_argument("--extra-weight", type=float, default=1.0, help="sampling weight of an --extra-data crop vs a facemask one")
    ap.add_argument("--augment", action="store_true",
                    help="tight crops, sunglasses, hand over the mouth, band below the chin, gamma/colour cast/low light")
    ap.add_argument("--mask-styles", action="store_true",
                    help="painted masks in every style (surgical, KN95, cup respirator, printed cloth) with ear loops")
    ap.add_argument("--synthetic-weight", type=float, default=1.0,
                    help="sampling weight of a painted-mask crop vs a real crop of the same class")
    ap.add_argument("--init-onnx", default="", metavar="ONNX",
                    help="fine-tune this exported classifier (same --width) instead of training from scratch")
    ap.add_argument("--teacher", default="", metavar="ONNX",
                    help="distil this exported classifier into the network (same crop size), e.g. "
                         "engines/mask_classifier_aizoo.onnx")
    ap.add_argument("--distill-alpha", type=float, default=0.7, help="weight of the teacher's loss (0..1)")
    ap.add_argument("--distill-temperature", type=float, default=2.0, help="softening temperature of the distillation")
    ap.add_argument("--select-on-gate-views", action="store_true",
                    help="keep the epoch with the best mean gate balanced accuracy over issue 12's eight choice views "
                         "(facemask VAL, mask_wearing_train, their kiosk frames) instead of the best VAL mAP@0.5")
    ap.add_argument("--min-val-map", type=float, default=0.0,
                    help="with --select-on-gate-views: only epochs whose VAL mAP@0.5 reaches this are kept")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--ensemble", nargs="+", metavar="CKPT",
                    help="no training: export the mean of these trained classifiers (best.pt files) as --out/--onnx-name")
    ap.add_argument("--evaluate-selection", nargs="+", metavar="ONNX",
                    help="no training: score these classifiers with --face-model (default the repository's) on "
                         "engines/splits/mask_wearing_select.txt and its kiosk frames; JSON to --work/selection.json")
    a = ap.parse_args(argv)
    if a.evaluate_selection:
        res = evaluate_selection(a.evaluate_selection, a.face_model or "engines/face_detector.onnx",
                                 log=lambda line: print(line, file=sys.stderr))
        os.makedirs(a.work, exist_ok=True)
        with open(os.path.join(a.work, "selection.json"), "w") as f:
            json.dump(res, f, indent=1, default=float)
        print(selection_table(res))
        return 0
    if a.ensemble:
        path = os.path.join(a.out, a.onnx_name)
        export_onnx(mean_of(a.ensemble), path)
        print(json.dumps({"onnx": path, "members": a.ensemble, "onnx_bytes": os.path.getsize(path)}))
        return 0
    if not a.data:
        ap.error("--data is needed to train")
    corr = None
    if a.box_correction is not None:
        from kiosk.vision.faces import parse_box_correction

        corr = parse_box_correction(a.box_correction)
    rep = train(a.data, a.out, a.epochs, a.work, a.face_model, a.batch_size, a.lr, a.seed, a.resume, a.threads,
                not a.no_progress, box_correction=corr, onnx_name=a.onnx_name, synthetic=not a.no_synthetic,
                samples_per_epoch=a.samples_per_epoch, extra_face_models=a.extra_crops_from, width=a.width,
                train_fraction=a.train_fraction, crop_size=a.crop_size, backbone=a.backbone,
                extra_data=[tuple(e.split("=", 1)) for e in a.extra_data], extra_weight=a.extra_weight,  # type: ignore[misc]
                augment=a.augment, init_onnx=a.init_onnx, mask_styles=a.mask_styles,
                synthetic_weight=a.synthetic_weight, teacher=a.teacher, distill_alpha=a.distill_alpha,
                distill_temperature=a.distill_temperature, select_on_gate_views=a.select_on_gate_views,
                min_val_map=a.min_val_map)
    print(json.dumps({k: rep[k] for k in ("onnx", "onnx_bytes", "best_epoch", "train_time_s", "params")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
