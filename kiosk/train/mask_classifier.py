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
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from kiosk.train.data import CLASSES, iou_matrix, load_dataset, read_splits, stratified_split, subsample, write_splits
from kiosk.vision.mask import CROP_MARGIN, CROP_SIZE, MEAN, STD, crop_boxes

ONNX_NAME = "mask_classifier.onnx"
SPLIT_SEED = 0  # engines/splits/ was made with it
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

    @property
    def label_array(self) -> np.ndarray:
        return np.asarray(self.labels, np.int64)


# Detector settings whose boxes become training crops: the kiosk's live setting and the photo mode
# the dataset is evaluated in (kiosk.vision.mask.MODES), so the classifier sees both kinds of box.
DETECTOR_SETTINGS = ({"score_threshold": 0.5, "min_long_side": 640}, {"score_threshold": 0.1, "min_long_side": 800})


def build_set(data_dir: str, names: List[str], face_model: Optional[str] = None, min_iou: float = 0.4,
              box_correction: Union[str, Sequence[float], None] = None, synthetic: bool = False,
              extra_face_models: Sequence[str] = ()) -> CropSet:
    """GT boxes of ``names``, plus (with ``face_model``) that detector's boxes, under each of
    :data:`DETECTOR_SETTINGS`, matched to a GT box at IoU >= ``min_iou``. ``box_correction``: the
    detector's correction; None = the one that goes with the model file (:func:`kiosk.vision.faces.box_correction_for`:
    its JSON sidecar, else learned). ``extra_face_models``: more detectors whose boxes are added the
    same way, each with its own file's correction. ``synthetic``: every ``without_mask`` GT face a
    detector found is added twice more with a painted mask (:mod:`kiosk.train.synthetic_masks`), worn
    correctly (label with_mask) and wrongly (label mask_weared_incorrect)."""
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
        for b, lab in zip(a.boxes, a.labels):
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
                    cs.add(i, boxes[j], a.labels[g], "yunet")
                    if g not in gt_landmarks or iou[j, g] > gt_landmarks[g][0]:
                        gt_landmarks[g] = (float(iou[j, g]), kps[j])
        if synthetic:
            for g, (_, kp) in sorted(gt_landmarks.items(), key=lambda item: item[0]):
                if CLASSES[a.labels[g]] == "without_mask":
                    cs.add(i, a.boxes[g], CLASSES.index("with_mask"), "synthetic", kp, CORRECT)
                    cs.add(i, a.boxes[g], CLASSES.index("mask_weared_incorrect"), "synthetic", kp, INCORRECT)
    return cs


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


def make_batch(cs: CropSet, idx: np.ndarray, rng: Optional[np.random.RandomState], size: int = CROP_SIZE) -> np.ndarray:
    """(B,3,S,S) float32 in 0..1, RGB (not yet normalized). ``rng`` None = no geometric augmentation."""
    from kiosk.train.synthetic_masks import crop_landmarks, paint_mask

    out = np.empty((len(idx), size, size, 3), np.float32)
    for k, i in enumerate(idx):
        box = cs.boxes[i]
        if rng is not None:
            box = jitter_box(box, rng)
        out[k] = crop_boxes(cs.images[cs.img_idx[i]], box[None], size, CROP_MARGIN)[0]
        if cs.paint[i]:
            paint_rng = rng if rng is not None else np.random.RandomState(i)
            m = size * CROP_MARGIN / (1 + 2 * CROP_MARGIN)  # the face box inside its crop
            lm = crop_landmarks(cs.landmarks[i], box, size, CROP_MARGIN)  # type: ignore[arg-type]
            out[k] = paint_mask(out[k], lm, (m, m, size - m, size - m), cs.paint[i], paint_rng)
        if rng is not None and rng.rand() < 0.5:
            out[k] = out[k, :, ::-1]
    return np.ascontiguousarray(out[..., ::-1].transpose(0, 3, 1, 2) / 255.0)


def photometric(x, gen):  # type: ignore[no-untyped-def]
    """Colour / resolution augmentation on a (B,3,S,S) 0..1 torch batch."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]

    def u(lo: float, hi: float):  # type: ignore[no-untyped-def]
        return torch.empty(b, 1, 1, 1).uniform_(lo, hi, generator=gen)

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
def build_model(num_classes: int = 3, width: int = 1):  # type: ignore[no-untyped-def]
    import torch.nn as nn

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

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
    from kiosk.train.export import replace_if_matches

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
        m = build_model(width=int(ck.get("width", 1)))
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
    (:func:`yunet_classifier`; it trains at a tenth of ``lr``, the new layer at ``lr``)."""
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
    va = build_set(data_dir, splits["val"], None)
    val_det = ValDetections(data_dir, splits["val"], face_model, box_correction, crop_size) if face_model else None
    select_by = "val_map50" if val_det is not None else "val_bal_acc"
    ytr = tr.label_array
    counts = np.bincount(ytr, minlength=3).astype(np.float64)
    print("train crops per class:", dict(zip(CLASSES, counts.astype(int).tolist())),
          "sources:", {s: tr.source.count(s) for s in ("gt", "yunet", "synthetic")},
          "| val:", np.bincount(va.label_array, minlength=3).tolist())
    inv = (counts.sum() / np.maximum(counts, 1)) ** 0.5
    sample_w = inv[ytr] / inv[ytr].sum()
    class_w = torch.tensor(inv / (inv * counts / counts.sum()).sum(), dtype=torch.float32)

    model = yunet_classifier(backbone) if backbone else build_model(width=width)
    groups = ([{"params": model.body.parameters(), "lr": lr / 10}, {"params": model.head.parameters()}] if backbone
              else [{"params": model.parameters()}])
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=5e-4)
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
            x = photometric(torch.from_numpy(make_batch(tr, idx, rng, crop_size)), gen)
            x = (x - MEAN) / STD
            y = torch.from_numpy(ytr[idx])
            loss = F.cross_entropy(model(x), y, weight=class_w, label_smoothing=0.05)
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
        h["elapsed_s"] = time.time() - t_start
        history.append(h)
        improved = h[select_by] > best
        if improved:
            best = h[select_by]
            torch.save({"model": model.state_dict(), "epoch": epoch + 1, "val": sm, "width": width,
                        "val_detection": {k: v for k, v in h.items() if k.startswith("val_")}}, best_path)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1, "best": best,
                    "history": history}, last_path + ".tmp")
        os.replace(last_path + ".tmp", last_path)
        print("epoch {:3d} train_loss {:.3f} val_loss {:.3f} val_acc {:.3f} val_bal_acc {:.3f} "
              "rec_incorrect {:.2f} val_mAP50 {}{} ({:.0f}s)".format(
            h["epoch"], h["train_loss"], h["val_loss"], h["val_acc"], h["val_bal_acc"], h["val_rec_incorrect"],
            "{:.3f}".format(h["val_map50"]) if "val_map50" in h else "-", " *" if improved else "", h["elapsed_s"]),
              flush=True)
        plot_curve(history, os.path.join(out_dir, curve_name))

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
        "train_sources": {s: tr.source.count(s) for s in ("gt", "yunet", "synthetic")},
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


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="VOC folder with images/ and annotations/")
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
                    help="fine-tune this YuNet face detector's pretrained backbone as the classifier (default: from scratch)")
    ap.add_argument("--crop-size", type=int, default=CROP_SIZE, help="input side in pixels (the kiosk reads it from the model)")
    ap.add_argument("--train-fraction", type=float, default=1.0,
                    help="train on this stratified part of the train split (learning curve); val/test unchanged")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--ensemble", nargs="+", metavar="CKPT",
                    help="no training: export the mean of these trained classifiers (best.pt files) as --out/--onnx-name")
    a = ap.parse_args(argv)
    if a.ensemble:
        path = os.path.join(a.out, a.onnx_name)
        export_onnx(mean_of(a.ensemble), path)
        print(json.dumps({"onnx": path, "members": a.ensemble, "onnx_bytes": os.path.getsize(path)}))
        return 0
    corr = None
    if a.box_correction is not None:
        from kiosk.vision.faces import parse_box_correction

        corr = parse_box_correction(a.box_correction)
    rep = train(a.data, a.out, a.epochs, a.work, a.face_model, a.batch_size, a.lr, a.seed, a.resume, a.threads,
                not a.no_progress, box_correction=corr, onnx_name=a.onnx_name, synthetic=not a.no_synthetic,
                samples_per_epoch=a.samples_per_epoch, extra_face_models=a.extra_crops_from, width=a.width,
                train_fraction=a.train_fraction, crop_size=a.crop_size, backbone=a.backbone)
    print(json.dumps({k: rep[k] for k in ("onnx", "onnx_bytes", "best_epoch", "train_time_s", "params")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
