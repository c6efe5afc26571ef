"""Fine-tune YuNet-n on the TRAIN split of the face-mask dataset so that it finds masked faces and
emits boxes in the dataset's convention (eyebrows to chin) directly.

    python -m kiosk.train.face_finetune --data ../shared/data/facemask \
        --base ../shared/models/yunet/yunet_n_dynamic.onnx --work out/face_ft --epochs 12 [--resume]
    python -m kiosk.train.face_finetune --data ../shared/data/facemask --work out/face_ft \
        --export engines/face_detector.onnx --epoch N        # write the chosen epoch's ONNX
    python -m kiosk.train.face_finetune --data ../shared/data/facemask --report val|test \
        --models ../shared/models/yunet/yunet_n_dynamic.onnx engines/face_detector.onnx
    python -m kiosk.train.face_finetune --data ../shared/data/facemask --report val|test \
        --pair A ../shared/models/yunet/yunet_n_dynamic.onnx learned engines/mask_classifier.onnx \
        --pair B engines/face_detector.onnx identity engines/mask_classifier_ft.onnx

Method (training-time only, needs torch + onnx; the kiosk runs the exported ONNX unchanged):
- the pretrained ONNX graph runs as a torch module (:mod:`kiosk.train.onnx_graph`), every weight
  trainable; the result is written back into the ORIGINAL graph (same input/output names and
  shapes, opset 13), so :class:`kiosk.vision.faces.FaceDetector` decodes it as before;
- outputs per stride s in (8, 16, 32) at grid point (gx, gy): ``cls``, ``obj`` (sigmoids),
  ``bbox`` = (dx, dy, log w, log h) -> centre ((gx + dx) s, (gy + dy) s), size (e^lw s, e^lh s),
  score = sqrt(cls x obj) -- exactly the decoding of ``FaceDetector``;
- targets: SimOTA-style dynamic assignment (as YuNet's own training): candidates are grid points
  inside the GT box and within 2.5 strides of its centre, cost = 3 (-ln IoU(pred, GT)) +
  BCE(score, 1); each GT takes its k cheapest candidates, k = floor(sum of its top-10 IoUs) >= 1;
  a point claimed by two GTs goes to the cheaper one. Without predictions (tests) a point's
  "prediction" is a square of 4 strides centred on it;
- loss: BCE(obj) over all points (GT boxes dropped by cropping or too small are ignored regions),
  BCE(cls, IoU) on positives, 5 (1 - GIoU) on positives, landmarks distilled (smooth L1) to the
  frozen original model on positives and wherever the original fires (no landmark labels);
- augmentation: random scale (long side 320..1000 px, or zoom so a chosen face is 32..220 px, or
  the kiosk path: letterboxed into 640x480 then x0.5 / x0.75 / x1), 448x448 crops (black padding
  like a letterboxed camera frame), horizontal flip, HSV jitter, 10 % grey.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from kiosk.train.data import Annotation, load_dataset, read_splits

STRIDES = (8, 16, 32)
CENTER_RADIUS = 2.5
PRIOR_SIZE = 4.0  # prior box side in strides, used when no prediction is given
CROP = 448
DEFAULT_BASE = "../shared/models/yunet/yunet_n_dynamic.onnx"


# ------------------------------------------------------------------------------------------
# grid, decoding, IoU (torch)
# ------------------------------------------------------------------------------------------
def grid_points(h: int, w: int, strides: Sequence[int] = STRIDES):  # type: ignore[no-untyped-def]
    """(P,2) point positions (gx*s, gy*s) in pixels and (P,) strides, in the order of the
    concatenated outputs (stride 8 first, rows then columns) for an h x w input."""
    import torch

    pts, st = [], []
    for s in strides:
        rows, cols = h // s, w // s
        yy, xx = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        pts.append(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1).float() * s)
        st.append(torch.full((rows * cols,), float(s)))
    return torch.cat(pts), torch.cat(st)


def decode(bbox, points, strides):  # type: ignore[no-untyped-def]
    """(..., P, 4) raw bbox outputs -> (..., P, 4) x1y1x2y2 pixels (FaceDetector's decoding)."""
    import torch

    s = strides[..., None]
    c = points + bbox[..., :2] * s
    wh = torch.exp(bbox[..., 2:].clamp(max=8.0)) * s
    return torch.cat([c - wh / 2, c + wh / 2], -1)


def box_iou(a, b, giou: bool = False):  # type: ignore[no-untyped-def]
    """Element-wise IoU (or GIoU) of broadcastable (..., 4) boxes."""
    import torch

    ix1 = torch.maximum(a[..., 0], b[..., 0])
    iy1 = torch.maximum(a[..., 1], b[..., 1])
    ix2 = torch.minimum(a[..., 2], b[..., 2])
    iy2 = torch.minimum(a[..., 3], b[..., 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    aa = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    ab = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    union = (aa + ab - inter).clamp(min=1e-6)
    iou = inter / union
    if not giou:
        return iou
    cw = torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])
    ch = torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    area_c = (cw * ch).clamp(min=1e-6)
    return iou - (area_c - union) / area_c


# ------------------------------------------------------------------------------------------
# target assignment
# ------------------------------------------------------------------------------------------
def assign(points, strides, gt, pred_boxes=None, pred_scores=None):  # type: ignore[no-untyped-def]
    """SimOTA-style assignment for one image.

    points (P,2), strides (P,), gt (G,4) x1y1x2y2; pred_boxes (P,4) / pred_scores (P,) detached
    predictions (None: a square of PRIOR_SIZE strides centred on each point, score 0.5).
    Returns (gt index per point (P,) long, -1 = background; IoU of the prediction with its GT (P,)).
    """
    import torch

    P = points.shape[0]
    idx = torch.full((P,), -1, dtype=torch.long)
    ious_out = torch.zeros(P)
    if gt.shape[0] == 0:
        return idx, ious_out
    if pred_boxes is None:
        half = strides[:, None] * PRIOR_SIZE / 2
        pred_boxes = torch.cat([points - half, points + half], 1)
    if pred_scores is None:
        pred_scores = torch.full((P,), 0.5)
    px, py = points[:, 0][None], points[:, 1][None]  # (1,P)
    x1, y1, x2, y2 = (gt[:, i : i + 1] for i in range(4))  # (G,1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    r = CENTER_RADIUS * strides[None]
    inside = (px >= x1) & (px <= x2) & (py >= y1) & (py <= y2)
    central = ((px - cx).abs() < r) & ((py - cy).abs() < r)
    cand = inside & central  # (G,P)
    # a GT too small to hold a grid point: its nearest stride-8 point (or the nearest point) instead
    empty = ~cand.any(1)
    if empty.any():
        d = (px - cx) ** 2 + (py - cy) ** 2 + (strides[None] != strides.min()).float() * 1e12
        near = d.argmin(1)
        cand[empty, near[empty]] = True
    iou = box_iou(pred_boxes[None], gt[:, None])  # (G,P)
    sc = pred_scores.clamp(1e-6, 1 - 1e-6)[None]
    cost = 3.0 * -torch.log(iou + 1e-8) - torch.log(sc) + 1e5 * (~cand).float()
    best_cost = torch.full((P,), float("inf"))
    for g in range(gt.shape[0]):
        ci = torch.nonzero(cand[g]).reshape(-1)
        top = torch.topk(iou[g, ci], min(10, len(ci))).values
        k = int(max(1, min(len(ci), int(top.sum().item()))))
        sel = ci[torch.topk(cost[g, ci], k, largest=False).indices]
        better = cost[g, sel] < best_cost[sel]
        sel = sel[better]
        best_cost[sel] = cost[g, sel]
        idx[sel] = g
        ious_out[sel] = iou[g, sel]
    return idx, ious_out


def _bce(p, t):  # type: ignore[no-untyped-def]
    import torch

    p = p.clamp(1e-6, 1 - 1e-6)
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p))


def detection_loss(out: Dict[str, object], gts: List[object], ignores: Optional[List[object]] = None,
                   teacher: Optional[Dict[str, object]] = None, box_weight: float = 5.0,
                   kps_weight: float = 1.0) -> Tuple[object, Dict[str, float]]:
    """Loss of a batch of raw outputs (dict ``cls_8`` ... ``kps_32``, each (B, P_s, C)) against GT
    boxes (list of (G,4) tensors, input pixels). ``ignores``: boxes whose points carry no objectness
    loss. ``teacher``: the original model's outputs for landmark distillation."""
    import torch

    cls = torch.cat([out["cls_%d" % s] for s in STRIDES], 1)[..., 0]  # type: ignore[index]
    obj = torch.cat([out["obj_%d" % s] for s in STRIDES], 1)[..., 0]  # type: ignore[index]
    bbox = torch.cat([out["bbox_%d" % s] for s in STRIDES], 1)  # type: ignore[index]
    kps = torch.cat([out["kps_%d" % s] for s in STRIDES], 1)  # type: ignore[index]
    B, P = cls.shape
    # input size from the stride-8 map is unknown here: recover rows/cols from the three levels
    h, w = _input_hw(out)
    points, strides = grid_points(h, w)
    boxes = decode(bbox, points, strides)
    score = torch.sqrt(cls * obj + 1e-12)
    obj_t = torch.zeros(B, P)
    obj_w = torch.ones(B, P)
    l_cls = l_box = l_kps = torch.zeros(())
    n_pos = 0
    for b in range(B):
        gt = gts[b]
        idx, iou = assign(points, strides, gt, boxes[b].detach(), score[b].detach())  # type: ignore[arg-type]
        pos = idx >= 0
        if ignores is not None and len(ignores[b]):  # type: ignore[arg-type]
            ig = ignores[b]
            px, py = points[:, 0], points[:, 1]
            inside = ((px[None] >= ig[:, 0:1]) & (px[None] <= ig[:, 2:3]) &  # type: ignore[index]
                      (py[None] >= ig[:, 1:2]) & (py[None] <= ig[:, 3:4])).any(0)  # type: ignore[index]
            obj_w[b, inside & ~pos] = 0
        n = int(pos.sum())
        if n == 0:
            continue
        n_pos += n
        obj_t[b, pos] = 1
        g = gt[idx[pos]]  # type: ignore[index]
        giou = box_iou(boxes[b, pos], g, giou=True)
        l_box = l_box + (1 - giou).sum()
        l_cls = l_cls + _bce(cls[b, pos], iou[pos].clamp(min=0.0)).sum()
        if teacher is not None:
            tk = torch.cat([teacher["kps_%d" % s] for s in STRIDES], 1)[b]  # type: ignore[index]
            ts = torch.sqrt(torch.cat([teacher["cls_%d" % s] * teacher["obj_%d" % s] for s in STRIDES], 1)[b, :, 0])  # type: ignore[index, operator]
            m = pos | (ts > 0.3)
            l_kps = l_kps + torch.nn.functional.smooth_l1_loss(kps[b, m], tk[m], reduction="sum", beta=0.1) / 10
    denom = max(n_pos, 1)
    l_obj = (_bce(obj, obj_t) * obj_w).sum() / denom
    l_cls = l_cls / denom
    l_box = box_weight * l_box / denom
    l_kps = kps_weight * l_kps / denom
    total = l_obj + l_cls + l_box + l_kps
    return total, {"obj": float(l_obj.detach()), "cls": float(l_cls.detach()), "box": float(l_box.detach()),
                   "kps": float(l_kps.detach()), "pos": n_pos}


def _input_hw(out: Dict[str, object]) -> Tuple[int, int]:
    """The input's (h, w), carried by the caller in ``out["_hw"]``."""
    hw = out.get("_hw")
    if hw is None:
        raise KeyError("outputs need '_hw' = (height, width) of the input")
    return int(hw[0]), int(hw[1])  # type: ignore[index]


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
class Sampler:
    """Augmented 448x448 training crops (BGR float, YuNet's raw 0..255 input) with their GT boxes."""

    def __init__(self, data_dir: str, anns: Sequence[Annotation], seed: int = 0, crop: int = CROP,
                 kiosk_views: float = 0.0) -> None:
        self.anns = [a for a in anns if len(a.boxes)]
        self.imgs = [cv2.imread(os.path.join(data_dir, "images", a.image), cv2.IMREAD_COLOR) for a in self.anns]
        self.rng = np.random.default_rng(seed)
        self.crop = crop
        self.kiosk_views = float(kiosk_views)

    def sample(self, i: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self.rng
        if self.kiosk_views > 0 and rng.random() < self.kiosk_views:  # no draw at 0: earlier runs repeat
            return self.kiosk_view(i)
        img, a = self.imgs[i], self.anns[i]
        h, w = img.shape[:2]
        boxes = a.boxes.astype(np.float32).copy()
        u = rng.random()
        focus = None
        if u < 0.4:  # photo-like: long side 320..1000
            s = rng.uniform(320, 1000) / max(h, w)
        elif u < 0.7:  # close faces: a chosen face 32..220 px tall
            focus = int(rng.integers(len(boxes)))
            fh = max(boxes[focus, 3] - boxes[focus, 1], 4.0)
            s = min(rng.uniform(32, 220) / fh, 2000.0 / max(h, w))
        else:  # the kiosk path: letterboxed into 640x480, then detect scale 0.5 / 0.75 / 1
            s = min(640.0 / w, 480.0 / h) * float(rng.choice([0.5, 0.75, 1.0]))
        nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
        im = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
        sx, sy = nw / w, nh / h
        boxes *= np.array([sx, sy, sx, sy], np.float32)
        C = self.crop
        # crop window (x0, y0) in the resized image; may start before 0 / run past the end (padding)
        if focus is not None:
            b = boxes[focus]
            lo_x, hi_x = b[2] - C, b[0]
            lo_y, hi_y = b[3] - C, b[1]
            x0 = int(rng.uniform(min(lo_x, hi_x), max(lo_x, hi_x)))
            y0 = int(rng.uniform(min(lo_y, hi_y), max(lo_y, hi_y)))
        else:
            x0 = int(rng.integers(0, nw - C + 1)) if nw > C else int(rng.integers(-(C - nw) if rng.random() < 0.3 else 0, 1))
            y0 = int(rng.integers(0, nh - C + 1)) if nh > C else int(rng.integers(-(C - nh) if rng.random() < 0.3 else 0, 1))
        canvas = np.zeros((C, C, 3), np.uint8)
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x0 + C, nw), min(y0 + C, nh)
        if sx1 > sx0 and sy1 > sy0:
            canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = im[sy0:sy1, sx0:sx1]
        boxes -= np.array([x0, y0, x0, y0], np.float32)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        cl = boxes.copy()
        cl[:, 0::2] = np.clip(cl[:, 0::2], 0, C)
        cl[:, 1::2] = np.clip(cl[:, 1::2], 0, C)
        carea = np.clip(cl[:, 2] - cl[:, 0], 0, None) * np.clip(cl[:, 3] - cl[:, 1], 0, None)
        vis = carea / np.maximum(area, 1e-6)
        bh = cl[:, 3] - cl[:, 1]
        bw = cl[:, 2] - cl[:, 0]
        keep = (vis >= 0.6) & (np.minimum(bh, bw) >= 4)
        ignore = (~keep) & (carea > 0)
        return self._flip_colour(canvas, cl[keep], cl[ignore])

    def _flip_colour(self, canvas: np.ndarray, gt: np.ndarray,
                     ig: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Half of the views mirrored (boxes too), then the colour jitter: the last step of every sample."""
        C = canvas.shape[1]
        if self.rng.random() < 0.5:
            canvas = canvas[:, ::-1]
            gt = np.stack([C - gt[:, 2], gt[:, 1], C - gt[:, 0], gt[:, 3]], 1) if len(gt) else gt
            ig = np.stack([C - ig[:, 2], ig[:, 1], C - ig[:, 0], ig[:, 3]], 1) if len(ig) else ig
        canvas = self._colour(np.ascontiguousarray(canvas))
        return canvas, gt.reshape(-1, 4).astype(np.float32), ig.reshape(-1, 4).astype(np.float32)

    def _in_view(self, boxes: np.ndarray) -> np.ndarray:
        """(N,4) boxes clipped to the view, the empty ones dropped."""
        b = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, self.crop)
        return b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])]

    def kiosk_view(self, i: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One face of image ``i`` as a kiosk sees a face it must not miss (issue 12): the face with 0-25 % of its
        surroundings, either alone and filling most of the input (a close-up, a photo "as published"), or
        upscaled to 40-300 px and pasted on a defocused part of another training image (a face in front of a
        scene). Upscaling blurs it as a low-resolution face does. Other faces in the view are ignore regions.
        So that a pasted rectangle is no sign of a face, the same kinds of views are made of face-free patches
        too: one or two hard-edged decoy patches under every pasted face, a quarter of the close-ups a patch
        with no face (no GT), and half of the faces blended in with a soft edge."""
        rng, C = self.rng, self.crop
        img, a = self.imgs[i], self.anns[i]
        h, w = img.shape[:2]
        f = int(rng.integers(len(a.boxes)))
        x1, y1, x2, y2 = (float(v) for v in a.boxes[f])
        bw, bh = max(x2 - x1, 2.0), max(y2 - y1, 2.0)
        g = rng.uniform(0.0, 0.25)
        r0, c0 = int(max(0, y1 - g * bh)), int(max(0, x1 - g * bw))
        r1, c1 = int(min(h, np.ceil(y2 + g * bh))), int(min(w, np.ceil(x2 + g * bw)))
        patch = img[r0:r1, c0:c1]
        ph, pw = patch.shape[:2]
        ignore = []
        alone = rng.random() < 0.4
        if alone and rng.random() < 0.25:  # a close-up of no face
            patch, decoy_faces = self._decoy(ph, pw)
            s = rng.uniform(160, C) / max(ph, pw)
            canvas = np.zeros((C, C, 3), np.uint8)
            nw, nh = max(2, int(round(pw * s))), max(2, int(round(ph * s)))
            px, py = int(rng.integers(0, C - nw + 1)), int(rng.integers(0, C - nh + 1))
            canvas[py:py + nh, px:px + nw] = cv2.resize(patch, (nw, nh))
            ig = self._in_view(decoy_faces * s + np.array([px, py, px, py], np.float32))
            return self._colour(canvas), np.zeros((0, 4), np.float32), ig
        if alone:  # alone, filling the input
            s = rng.uniform(160, C) / max(ph, pw)
            canvas = np.zeros((C, C, 3), np.uint8)
        else:  # pasted on another scene
            s = min(rng.uniform(40, 300) / bh, (C - 2) / max(ph, pw))
            j = int(rng.integers(len(self.imgs)))
            bg, bga = self.imgs[j], self.anns[j]
            cover = C / min(bg.shape[:2]) * rng.uniform(1.0, 2.0)
            bg = cv2.resize(bg, (max(C, int(round(bg.shape[1] * cover))), max(C, int(round(bg.shape[0] * cover)))))
            oy, ox = int(rng.integers(0, bg.shape[0] - C + 1)), int(rng.integers(0, bg.shape[1] - C + 1))
            canvas = cv2.GaussianBlur(bg[oy:oy + C, ox:ox + C], (0, 0), rng.uniform(0.5, 2.5))
            ignore += [b * cover - np.array([ox, oy, ox, oy], np.float32) for b in bga.boxes]
            for _ in range(int(rng.integers(1, 3))):  # hard-edged patches with no face: an edge is no face
                dp, dfaces = self._decoy(ph, pw)
                dw, dh = max(2, int(round(pw * s * rng.uniform(0.7, 1.4)))), max(2, int(round(ph * s * rng.uniform(0.7, 1.4))))
                dw, dh = min(dw, C), min(dh, C)
                dx, dy = int(rng.integers(0, C - dw + 1)), int(rng.integers(0, C - dh + 1))
                canvas[dy:dy + dh, dx:dx + dw] = cv2.resize(dp, (dw, dh))
                k = np.array([dw / float(dp.shape[1]), dh / float(dp.shape[0])] * 2, np.float32)
                ignore += list(dfaces * k + np.array([dx, dy, dx, dy], np.float32))
        nw, nh = max(2, int(round(pw * s))), max(2, int(round(ph * s)))
        face = cv2.resize(patch, (nw, nh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
        px, py = int(rng.integers(0, C - nw + 1)), int(rng.integers(0, C - nh + 1))
        if not alone and rng.random() < 0.5:  # blended in with a soft edge
            edge = max(1.0, 0.08 * min(nw, nh))
            yy, xx = np.mgrid[0:nh, 0:nw].astype(np.float32)
            d = np.minimum(np.minimum(xx, nw - 1 - xx), np.minimum(yy, nh - 1 - yy))
            alpha = np.clip(d / edge, 0, 1)[..., None]
            under = canvas[py:py + nh, px:px + nw].astype(np.float32)
            face = (face.astype(np.float32) * alpha + under * (1 - alpha)).astype(np.uint8)
        canvas[py:py + nh, px:px + nw] = face
        to_view = np.array([s, s, s, s], np.float32)
        shift = np.array([px - c0 * s, py - r0 * s] * 2, np.float32)
        gt = a.boxes[f:f + 1].astype(np.float32) * to_view + shift
        others = np.delete(a.boxes, f, 0).astype(np.float32) * to_view + shift
        inside = ((others[:, 2] > px) & (others[:, 0] < px + nw) & (others[:, 3] > py) & (others[:, 1] < py + nh))
        ignore += list(others[inside])
        gt[:, 0::2] = np.clip(gt[:, 0::2], px, px + nw)
        gt[:, 1::2] = np.clip(gt[:, 1::2], py, py + nh)
        return self._flip_colour(canvas, gt, self._in_view(ignore))

    def _decoy(self, ph: int, pw: int) -> Tuple[np.ndarray, np.ndarray]:
        """A ph x pw patch of a random training image away from its faces where it can be (a few tries), and
        the boxes of the faces it still holds (patch pixels: ignore regions)."""
        rng = self.rng
        j = int(rng.integers(len(self.imgs)))
        img, boxes = self.imgs[j], self.anns[j].boxes.astype(np.float32)
        h, w = img.shape[:2]
        ph, pw = max(2, min(ph, h)), max(2, min(pw, w))
        best = None
        for _ in range(6):
            y, x = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
            inside = boxes - np.array([x, y, x, y], np.float32)
            hit = (inside[:, 2] > 0) & (inside[:, 0] < pw) & (inside[:, 3] > 0) & (inside[:, 1] < ph)
            if best is None or hit.sum() < best[2].sum():
                best = (y, x, hit, inside)
            if not hit.any():
                break
        y, x, hit, inside = best  # type: ignore[misc]
        return img[y:y + ph, x:x + pw], inside[hit].reshape(-1, 4)

    def _colour(self, img: np.ndarray) -> np.ndarray:
        rng = self.rng
        if rng.random() < 0.1:
            g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5, 5)) % 180
        hsv[..., 1] *= rng.uniform(0.6, 1.4)
        hsv[..., 2] *= rng.uniform(0.6, 1.4)
        return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)


# ------------------------------------------------------------------------------------------
# evaluation (the kiosk's own ONNX path)
# ------------------------------------------------------------------------------------------
IDENTITY = (0.0, 0.0, 0.0, 0.0)


def eval_model(face_model: str, data_dir: str, names: Sequence[str], correction: object,
               mask_model: str = "engines/mask_classifier.onnx", modes: Sequence[str] = ("photo",),
               recall_scores: Sequence[float] = (0.5,)) -> Dict[str, object]:
    """mAP (kiosk.train.evaluate) per mode, plus face recall@IoU 0.5 (one-to-one) in live mode."""
    from kiosk.train.data import iou_matrix
    from kiosk.train.evaluate import IOU_THRESHOLDS, detection_ap, load_eval_set, run_detector, summarize_ap, to_detections
    from kiosk.vision.mask import MaskDetector

    anns, _ = load_eval_set(data_dir, names)
    rep = {}  # type: Dict[str, object]
    for mode in modes:
        det = MaskDetector.for_mode(face_model, mask_model, mode, box_correction=correction)
        kept, raws, _, t = run_detector(det, data_dir, anns)
        r = summarize_ap(detection_ap(kept, to_detections(raws, False), IOU_THRESHOLDS))
        r["ms_per_image"] = round(1000 * t / max(len(kept), 1), 1)
        # face recall (any class) at IoU 0.5 among detections with face score >= thr
        for thr in recall_scores:
            hit = tot = 0
            for a, d in zip(kept, raws):
                g = a.boxes
                tot += len(g)
                b = d["boxes"][d["scores"] >= thr]
                if len(g) == 0 or len(b) == 0:
                    continue
                iou = iou_matrix(g, b)
                used = set()
                for gi in np.argsort(-iou.max(1)):
                    j = int(np.argmax(np.where([k in used for k in range(len(b))], -1, iou[gi])))
                    if iou[gi, j] >= 0.5 and j not in used:
                        used.add(j)
                        hit += 1
            r["face_recall@0.5_score>={}".format(thr)] = round(hit / max(tot, 1), 4)
        rep[mode] = r
    return rep


def close_range(face_model: str, data_dir: str, split_files: Sequence[str], correction: object,
                scales: Sequence[float] = (0.5, 1.0), min_height: int = 64, score: float = 0.5,
                mask_model: str = "engines/mask_classifier.onnx") -> Dict[str, object]:
    """``kiosk.bench.close_range`` with the kiosk's live detector built as ``build_detector`` does."""
    from kiosk.bench.close_range import run_close_range_bench
    from kiosk.vision.mask import MaskDetector

    def make(scale: float):  # type: ignore[no-untyped-def]
        return MaskDetector.for_mode(face_model, mask_model, "live", face_score_threshold=score, scale=scale,
                                     min_long_side=int(round(640 * scale)), box_correction=correction)

    return run_close_range_bench(make, data_dir, list(split_files), list(scales), min_height)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------
def train(data_dir: str, base: str, work: str, epochs: int = 12, lr: float = 5e-4, batch: int = 8,
          split_dir: str = "engines/splits", resume: bool = False, seed: int = 0, threads: int = 2,
          iters_per_epoch: Optional[int] = None, eval_every: int = 1, kiosk_views: float = 0.0) -> Dict[str, object]:
    import torch

    from kiosk.train.onnx_graph import OnnxModule, write_onnx

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    os.makedirs(work, exist_ok=True)
    splits = read_splits(split_dir)
    by = {a.image: a for a in load_dataset(data_dir)}
    train_anns = [by[n] for n in splits["train"] if n in by]
    sampler = Sampler(data_dir, train_anns, seed, kiosk_views=kiosk_views)
    student = OnnxModule(base)
    teacher = OnnxModule(base).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    decay = [p for n, p in student.params.items() if p.ndim > 1]
    no_decay = [p for n, p in student.params.items() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    n_iter = iters_per_epoch or int(math.ceil(len(sampler.anns) / batch))
    total_it = epochs * n_iter
    warm = min(100, n_iter)
    start_epoch, history = 0, []  # type: int, List[Dict[str, object]]
    last = os.path.join(work, "last.pt")
    if resume and os.path.exists(last):
        ck = torch.load(last, weights_only=False)
        student.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start_epoch, history = ck["epoch"], ck["history"]
        sampler.rng = np.random.default_rng(seed + 1000 * start_epoch)
        torch.manual_seed(seed + start_epoch)
        print("resumed after epoch", start_epoch, flush=True)
    val_names = splits["val"]
    for ep in range(start_epoch, epochs):
        t0 = time.time()
        student.train()
        order = sampler.rng.permutation(len(sampler.anns))
        sums = {}  # type: Dict[str, float]
        for it in range(n_iter):
            gi = ep * n_iter + it
            f = gi / warm if gi < warm else 0.5 * (1 + math.cos(math.pi * (gi - warm) / max(1, total_it - warm)))
            for g in opt.param_groups:
                g["lr"] = lr * max(f, 0.02)
            ids = [order[(it * batch + k) % len(order)] for k in range(batch)]
            xs, gts, igs = [], [], []
            for i in ids:
                im, gt, ig = sampler.sample(int(i))
                xs.append(im.transpose(2, 0, 1))
                gts.append(torch.from_numpy(gt))
                igs.append(torch.from_numpy(ig))
            x = torch.from_numpy(np.stack(xs).astype(np.float32))
            with torch.no_grad():
                tout = teacher(x)
            out = dict(student(x))
            out["_hw"] = (x.shape[2], x.shape[3])
            loss, parts = detection_loss(out, gts, igs, tout)  # type: ignore[arg-type]
            opt.zero_grad()
            loss.backward()  # type: ignore[attr-defined]
            torch.nn.utils.clip_grad_norm_(student.parameters(), 10.0)
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        rec = {"epoch": ep + 1, "train_s": round(time.time() - t0, 1),
               "loss": {k: round(v / n_iter, 4) for k, v in sums.items()}}  # type: Dict[str, object]
        path = os.path.join(work, "ep%02d.onnx" % (ep + 1))
        write_onnx(student, path, 13)
        if eval_every and ((ep + 1) % eval_every == 0 or ep + 1 == epochs):
            t1 = time.time()
            rec["val"] = eval_model(path, data_dir, val_names, IDENTITY)
            rec["val_close64_s0.5"] = close_range(path, data_dir, [os.path.join(split_dir, "val.txt")], IDENTITY,
                                                  scales=(0.5,))["scales"]["0.5"]
            rec["eval_s"] = round(time.time() - t1, 1)
        history.append(rec)
        print(json.dumps(rec), flush=True)
        tmp = last + ".tmp"
        torch.save({"model": student.state_dict(), "opt": opt.state_dict(), "epoch": ep + 1, "history": history,
                    "args": {"lr": lr, "batch": batch, "epochs": epochs, "seed": seed, "base": base}}, tmp)
        os.replace(tmp, last)
        with open(os.path.join(work, "history.json"), "w") as f:
            json.dump(history, f, indent=1)
    return {"history": history}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--base", default=DEFAULT_BASE)
    ap.add_argument("--work", default="out/face_ft")
    ap.add_argument("--split-dir", default="engines/splits")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=None, help="iterations per epoch (default: one pass)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kiosk-views", type=float, default=0.0,
                    help="share of samples that are one face as a kiosk sees it: a close-up filling the input, or "
                         "upscaled and pasted on another scene (issue 12; 0 = the recipe before)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export", default=None, help="copy the ONNX of --epoch to this path and stop")
    ap.add_argument("--epoch", type=int, default=None)
    ap.add_argument("--report", default=None, choices=("val", "test"), help="evaluate --models on a split and stop")
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--pair", nargs=4, action="append", default=None, metavar=("LABEL", "FACE", "CORRECTION", "MASK"),
                    help="with --report: evaluate this detector pair (face model, box correction: learned / identity / "
                         "constant / auto = its sidecar's, mask classifier) instead of --models x both corrections; "
                         "repeatable")
    a = ap.parse_args(argv)
    if a.export:
        import shutil

        src = os.path.join(a.work, "ep%02d.onnx" % a.epoch)
        shutil.copyfile(src, a.export + ".tmp")
        os.replace(a.export + ".tmp", a.export)
        print("wrote", a.export)
        return 0
    if a.report:
        names = read_splits(a.split_dir)[a.report]
        split_file = os.path.join(a.split_dir, a.report + ".txt")
        out = {}
        for label, face, cname, mask in a.pair or []:
            from kiosk.vision.faces import box_correction_for, parse_box_correction

            corr = box_correction_for(face) if cname == "auto" else parse_box_correction(cname)
            key = "{} = {} [{}] + {}".format(label, os.path.basename(face), cname if cname != "auto" else corr,
                                             os.path.basename(mask))
            r = {"map": eval_model(face, a.data, names, corr, mask, modes=("photo", "live"))}
            r["close_range"] = {str(mh): close_range(face, a.data, [split_file], corr, (0.5, 1.0), mh,
                                                     mask_model=mask)["scales"] for mh in (64, 96)}
            out[key] = r
            print(json.dumps({key: r}), flush=True)
        for m in ([] if a.pair else a.models or []):
            corrs = {"learned": "learned", "identity": IDENTITY}
            for cname, corr in corrs.items():
                key = "{} [{}]".format(os.path.basename(m), cname)
                r = {"map": eval_model(m, a.data, names, corr, modes=("photo", "live"))}  # type: Dict[str, object]
                r["close_range"] = {str(mh): close_range(m, a.data, [split_file], corr, (0.5, 1.0), mh)["scales"]
                                    for mh in (64, 96)}
                out[key] = r
                print(json.dumps({key: r}), flush=True)
        return 0
    train(a.data, a.base, a.work, a.epochs, a.lr, a.batch, a.split_dir, a.resume, threads=a.threads,
          iters_per_epoch=a.iters, kiosk_views=a.kiosk_views)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
