"""Out-of-distribution evaluation (issue 12): every set, every model, scored the same way, side by side.

A *model* is anything with ``predict(image_bgr) -> [(box, class, score)]`` (:mod:`kiosk.train.peers`:
the kiosk's :class:`~kiosk.train.peers.KioskModel`, the peers UltraFace and AIZOO); a model may also offer
``predict_split(image) -> (predictions, operating)`` whose boolean list says which predictions the model
would act on (the kiosk keeps low face scores for AP, but the gate acts on face score >= 0.5). A *set* is an
:class:`EvalSet`: a VOC folder, optionally a list of its images, its IoU rule and box convention.

Per set and model (:func:`score_set`):

- ``ap``: VOC all-point AP at the set's IoU (0.5 for face-tight boxes, 0.3 for whole-head boxes), in two
  views. ``map_2class`` (every model): mask / no mask, ``mask_weared_incorrect`` ground truth **and**
  predictions counted as ``with_mask`` (an incorrectly worn mask is a mask; the peers cannot say
  "incorrect"). ``map_3class`` and per-class AP with ``mask_weared_incorrect`` (3-class models only, on sets
  that have that class).
- ``faces``: with the predictions the model acts on, matched one to one to ground truth (any class, best
  score first, IoU >= the set's): recall of faces, mask / no-mask accuracy on found faces (incorrect counted
  as mask), the share of found faces called "incorrect", false detections per image.
- ``converted`` (whole-head sets): the model's boxes moved to the head convention by a conversion fitted
  only on ``engines/splits/mask_wearing_train.txt`` (median offsets of the matched GT edges as fractions of
  the model's box, :func:`fit_box_conversion`), then AP and recall at IoU 0.5.
- ``image``: what the gate does, per image: the largest ground-truth face; the acted-on prediction on it
  (:func:`on_face`: IoU >= the set's, or a box mostly inside it and not a fragment) with the highest IoU,
  else the largest prediction (the gate reads the largest face: "wrong face"), else "no face".
  ``balanced_accuracy`` = mean of the mask and no-mask recalls, mask / no mask as the issue scores it (an
  "incorrect" call on a masked face is a mask; a miss, or a wrong face's class if it differs, is wrong);
  ``strict_balanced_accuracy``: the same, but a masked face must be read ``with_mask`` (an "incorrect" call
  on it counts as wrong too); on whole-head sets a face box is on the head also when the set's fitted head
  conversion of it overlaps the head at IoU >= 0.5 (a profile face in a head of hair); ``no_face_rate``;
  ``masked_called_incorrect`` and
  ``unmasked_called_incorrect`` (share of those images; ``*_sure_incorrect``: only the "incorrect" calls a
  calibrated classifier is sure of, the ones that deny); images whose largest face is worn incorrectly are
  counted apart (``incorrect_images``, ``incorrect_called_incorrect``).

:func:`evaluate_sets` runs one model over sets; :func:`evaluate_models` several, with
:func:`summary_line` (one line per model across all sets: every model choice is made on them together)
and :func:`markdown_tables`. ``dabai-kiosk eval detector`` (without ``--data``) is the command.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.train.data import CLASS_INDEX, CLASSES, Annotation, iou_matrix

WITH, WITHOUT, INCORRECT = 0, 1, 2
MODEL_NAMES = ("kiosk", "kiosk_live", "ultraface", "aizoo")
SETS = ("facemask", "mask_wearing", "facemask_frame", "facemask_paste", "facemask_crop",
        "mask_wearing_frame", "mask_wearing_paste", "mask_wearing_crop")
Dets = Dict[str, np.ndarray]  # boxes (N,4), labels (N,) class index, scores (N,), op (N,) bool, sure (N,) bool


@dataclasses.dataclass
class EvalSet:
    name: str
    data_dir: str
    names: Optional[List[str]] = None  # images of the folder to use (None: all)
    iou: float = 0.5  # match rule of the set's boxes
    head_boxes: bool = False  # ground truth boxes the whole head (mask_wearing): box conversion reported
    convert_fit: Optional["EvalSet"] = None  # where a box conversion is fitted (head sets)


# ----------------------------------------------------------------------------------------------- running


def _full_predict(model: Any, img: np.ndarray) -> Tuple[List[Any], List[bool], List[bool]]:
    """(predictions, acted on, sure): from ``predict_full``, ``predict_split`` or ``predict``."""
    if hasattr(model, "predict_full"):
        preds, op, sure = model.predict_full(img)
        return list(preds), [bool(x) for x in op], [bool(x) for x in sure]
    if hasattr(model, "predict_split"):
        preds, op = model.predict_split(img)
        return list(preds), [bool(x) for x in op], [True] * len(preds)
    preds = list(model.predict(img))
    return preds, [True] * len(preds), [True] * len(preds)


def to_dets(preds: Sequence[Any], op: Optional[Sequence[bool]] = None, sure: Optional[Sequence[bool]] = None) -> Dets:
    """[(box, class name, score)] -> arrays."""
    n = len(preds)
    return {"boxes": np.asarray([p[0] for p in preds], np.float32).reshape(n, 4),
            "labels": np.asarray([CLASS_INDEX[p[1]] for p in preds], np.int64).reshape(n),
            "scores": np.asarray([p[2] for p in preds], np.float32).reshape(n),
            "op": np.asarray(op if op is not None else [True] * n, bool).reshape(n),
            "sure": np.asarray(sure if sure is not None else [True] * n, bool).reshape(n)}


def run_model(model: Any, s: EvalSet) -> Tuple[List[Annotation], List[Dets], float, Dict[str, object]]:
    """(annotations of the readable images, their detections, seconds of prediction, what was skipped)."""
    from kiosk.train.evaluate import load_eval_set, read_image

    anns, skipped = load_eval_set(s.data_dir, s.names)
    kept, dets, secs, bad = [], [], 0.0, 0
    for a in anns:
        img = read_image(os.path.join(s.data_dir, "images", a.image))
        if img is None:
            bad += 1
            continue
        t = time.perf_counter()
        preds, op, sure = _full_predict(model, img)
        secs += time.perf_counter() - t
        kept.append(a)
        dets.append(to_dets(preds, op, sure))
    if bad:
        skipped = dict(skipped, unreadable_images=bad)
    return kept, dets, secs, skipped


# ----------------------------------------------------------------------------------------------- scoring


def _merge(a: Annotation) -> Annotation:
    return dataclasses.replace(a, labels=np.where(a.labels == INCORRECT, WITH, a.labels))


def _merge_dets(d: Dets) -> Dets:
    return dict(d, labels=np.where(d["labels"] == INCORRECT, WITH, d["labels"]))


def _r(x: Optional[float], nd: int = 4) -> Optional[float]:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), nd)


def ap_scores(anns: Sequence[Annotation], dets: Sequence[Dets], iou: float, three_class: bool) -> Dict[str, object]:
    """AP at ``iou``: the 2-class view (incorrect merged into with_mask, GT and predictions) and, with
    ``three_class``, the 3-class view. Classes without ground truth are left out of the means."""
    from kiosk.train.evaluate import detection_ap

    key = "{:.2f}".format(iou)
    ap2 = detection_ap([_merge(a) for a in anns], [_merge_dets(d) for d in dets], (iou,))[key]
    two = {c: ap2[c] for c in CLASSES[:2]}
    vals = [v for v in two.values() if not np.isnan(v)]
    out = {"iou": iou, "map_2class": _r(float(np.mean(vals)) if vals else float("nan")),
           "ap_2class": {c: _r(v) for c, v in two.items()}}  # type: Dict[str, object]
    if three_class:
        ap3 = detection_ap(anns, dets, (iou,))[key]
        vals3 = [v for v in ap3.values() if not np.isnan(v)]
        out["map_3class"] = _r(float(np.mean(vals3)) if vals3 else float("nan"))
        out["ap_3class"] = {c: _r(v) for c, v in ap3.items()}
    return out


def match_faces(gt: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """For each GT box, the index of the detection matched to it (-1: none): one to one, class-agnostic,
    detections taken best score first, each to its highest-IoU free GT box at >= ``iou``."""
    m = -np.ones(len(gt), np.int64)
    if len(gt) == 0 or len(boxes) == 0:
        return m
    ious = iou_matrix(boxes, gt)
    for j in np.argsort(-scores, kind="stable"):
        cand = np.where(m >= 0, -1.0, ious[j])
        g = int(np.argmax(cand))
        if cand[g] >= iou:
            m[g] = j
    return m


def _op(d: Dets) -> Dets:
    k = d["op"]
    return {key: v[k] for key, v in d.items()}


def found_faces(anns: Sequence[Annotation], dets: Sequence[Dets], iou: float) -> Dict[str, object]:
    """Recall of faces, mask / no-mask accuracy on found faces, "incorrect" calls, false detections."""
    n_gt = n_found = n_right = n_incorrect = n_fp = 0
    for a, d in zip(anns, dets):
        d = _op(d)
        m = match_faces(a.boxes, d["boxes"], d["scores"], iou)
        found = m >= 0
        n_gt += len(a.boxes)
        n_found += int(found.sum())
        n_fp += len(d["boxes"]) - int(found.sum())
        if found.any():
            pred = d["labels"][m[found]]
            true2 = np.where(a.labels[found] == INCORRECT, WITH, a.labels[found])
            n_right += int((np.where(pred == INCORRECT, WITH, pred) == true2).sum())
            n_incorrect += int((pred == INCORRECT).sum())
    return {"faces": n_gt, "recall": _r(n_found / n_gt) if n_gt else None,
            "class_accuracy": _r(n_right / n_found) if n_found else None,
            "called_incorrect": _r(n_incorrect / n_found) if n_found else None,
            "false_per_image": _r(n_fp / max(len(anns), 1), 3)}


def on_face(gt_box: np.ndarray, boxes: np.ndarray, iou: float) -> np.ndarray:
    """Which ``boxes`` are on the face ``gt_box``: IoU >= ``iou``, or (box conventions differ: a face-tight
    box inside a whole-head box) at least 80 % of the box inside it and at least 20 % of its area (an eye or
    a mouth alone is not the face)."""
    if len(boxes) == 0:
        return np.zeros(0, bool)
    g = np.asarray(gt_box, np.float32)
    ix = np.clip(np.minimum(boxes[:, 2], g[2]) - np.maximum(boxes[:, 0], g[0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], g[3]) - np.maximum(boxes[:, 1], g[1]), 0, None)
    inter = ix * iy
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    garea = max(float((g[2] - g[0]) * (g[3] - g[1])), 1e-6)
    ious = inter / (area + garea - inter)
    return (ious >= iou) | ((inter / area >= 0.8) & (area >= 0.2 * garea))


def gate_prediction(gt_box: np.ndarray, d: Dets, iou: float, converted: Optional[Dets] = None) -> Tuple[str, int, bool]:
    """What the gate reads for the face ``gt_box``: ("match" | "wrong_face" | "no_face", class index or -1,
    sure). Among the acted-on predictions :func:`on_face` (or, on a whole-head set, whose head-``converted``
    box, :func:`convert_boxes` of ``d``, has IoU >= 0.5 with it), the one with the highest IoU; if none, the
    largest prediction (the gate reads the largest face: "wrong_face"); if there is no prediction, "no_face"."""
    d = _op(d)
    b = d["boxes"]
    if len(b) == 0:
        return "no_face", -1, True
    ok = on_face(gt_box, b, iou)
    if converted is not None:
        ok = ok | (iou_matrix(_op(converted)["boxes"], np.asarray(gt_box, np.float32)[None])[:, 0] >= 0.5)
    if ok.any():
        ious = iou_matrix(b, np.asarray(gt_box, np.float32)[None])[:, 0]
        j, how = int(np.argmax(np.where(ok, ious, -1.0))), "match"
    else:
        j, how = int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))), "wrong_face"
    sure = bool(d["sure"][j]) if "sure" in d else True
    return how, int(d["labels"][j]), sure


def image_level(anns: Sequence[Annotation], dets: Sequence[Dets], iou: float,
                converted: Optional[Sequence[Dets]] = None) -> Dict[str, object]:
    """The gate's view of each image: the class read for its largest ground-truth face (see module doc).
    ``*_called_incorrect``: the arg-max was "incorrect"; ``*_sure_incorrect``: and the calibrated classifier
    was sure of it (only that denies; an unsure one makes the kiosk ask to adjust and keep looking)."""
    n = np.zeros(3, np.int64)
    right = np.zeros(3, np.int64)  # mask / no mask: an "incorrect" call reads as a mask
    strict = np.zeros(3, np.int64)  # and a masked face must be read with_mask
    said_incorrect = np.zeros(3, np.int64)
    sure_incorrect = np.zeros(3, np.int64)
    no_face = wrong_face = images = 0
    for k, (a, d) in enumerate(zip(anns, dets)):
        if len(a.boxes) == 0:
            continue
        images += 1
        g = int(np.argmax((a.boxes[:, 2] - a.boxes[:, 0]) * (a.boxes[:, 3] - a.boxes[:, 1])))
        t = int(a.labels[g])
        how, pred, sure = gate_prediction(a.boxes[g], d, iou, converted[k] if converted is not None else None)
        n[t] += 1
        no_face += how == "no_face"
        wrong_face += how == "wrong_face"
        strict[t] += pred == t
        right[t] += pred == t or (t == WITH and pred == INCORRECT)
        said_incorrect[t] += pred == INCORRECT
        sure_incorrect[t] += pred == INCORRECT and sure
    rec = [right[c] / n[c] for c in (WITH, WITHOUT) if n[c]]
    rec_strict = [strict[c] / n[c] for c in (WITH, WITHOUT) if n[c]]

    def rate(x: np.ndarray, c: int) -> Optional[float]:
        return _r(x[c] / n[c]) if n[c] else None

    return {"images": images, "with_mask_images": int(n[WITH]), "without_mask_images": int(n[WITHOUT]),
            "incorrect_images": int(n[INCORRECT]),
            "balanced_accuracy": _r(float(np.mean(rec))) if rec else None,
            "strict_balanced_accuracy": _r(float(np.mean(rec_strict))) if rec_strict else None,
            "with_mask_recall": rate(right, WITH), "without_mask_recall": rate(right, WITHOUT),
            "no_face_rate": _r(no_face / images) if images else None,
            "wrong_face_rate": _r(wrong_face / images) if images else None,
            "masked_called_incorrect": rate(said_incorrect, WITH),
            "unmasked_called_incorrect": rate(said_incorrect, WITHOUT),
            "masked_sure_incorrect": rate(sure_incorrect, WITH),
            "unmasked_sure_incorrect": rate(sure_incorrect, WITHOUT),
            "incorrect_called_incorrect": rate(said_incorrect, INCORRECT)}


def fit_box_conversion(anns: Sequence[Annotation], dets: Sequence[Dets], iou: float = 0.3
                       ) -> Tuple[Tuple[float, float, float, float], int]:
    """(offsets of the GT box edges x1, y1, x2, y2 from a model's box, as fractions of its width / height:
    medians over one-to-one matches at >= ``iou``; number of pairs). Fit only on a training split."""
    offs = []
    for a, d in zip(anns, dets):
        d = _op(d)
        m = match_faces(a.boxes, d["boxes"], d["scores"], iou)
        for g in np.nonzero(m >= 0)[0]:
            b = d["boxes"][m[g]]
            wh = np.maximum(np.array([b[2] - b[0], b[3] - b[1]] * 2), 1e-6)
            offs.append((a.boxes[g] - b) / wh)
    if not offs:
        return (0.0, 0.0, 0.0, 0.0), 0
    med = np.median(np.asarray(offs), axis=0)
    return (float(med[0]), float(med[1]), float(med[2]), float(med[3])), len(offs)


def convert_boxes(d: Dets, conv: Sequence[float]) -> Dets:
    b = d["boxes"]
    wh = np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]] * 2, 1) if len(b) else np.zeros((0, 4), np.float32)
    return dict(d, boxes=(b + wh * np.asarray(conv, np.float32)).astype(np.float32))


def score_set(s: EvalSet, anns: Sequence[Annotation], dets: Sequence[Dets], three_class_model: bool,
              conversion: Optional[Tuple[Tuple[float, float, float, float], int]] = None) -> Dict[str, object]:
    """Every figure of one model on one set (module doc)."""
    has_incorrect = any((a.labels == INCORRECT).any() for a in anns)
    rep = {"images": len(anns), "faces": int(sum(len(a.boxes) for a in anns))}  # type: Dict[str, object]
    rep["ap"] = ap_scores(anns, dets, s.iou, three_class_model and has_incorrect)
    rep["found"] = found_faces(anns, dets, s.iou)
    cd = None
    if conversion is not None:
        conv, pairs = conversion
        cd = [convert_boxes(d, conv) for d in dets]
        ap = ap_scores(anns, cd, 0.5, False)
        rep["converted"] = {"conversion": [round(c, 4) for c in conv], "fit_pairs": pairs,
                            "iou": 0.5, "map_2class": ap["map_2class"], "ap_2class": ap["ap_2class"],
                            "recall": found_faces(anns, cd, 0.5)["recall"]}
    rep["image"] = image_level(anns, dets, s.iou, cd)
    return rep


# ----------------------------------------------------------------------------------------------- sets, models


def evaluate_sets(model_factory: Callable[[], Any], sets: Sequence[EvalSet],
                  log: Optional[Callable[[str], None]] = None) -> Dict[str, Dict[str, object]]:
    """set name -> :func:`score_set` report of the model ``model_factory()`` (a model of
    :mod:`kiosk.train.peers`, or a :class:`kiosk.vision.mask.MaskDetector`, wrapped)."""
    from kiosk.train.peers import KioskModel

    model = model_factory()
    if not hasattr(model, "predict") and hasattr(model, "detect_arrays"):
        model = KioskModel(model)
    three = int(getattr(model, "classes", 2)) == 3
    fits = {}  # type: Dict[str, Tuple[Tuple[float, float, float, float], int]]
    out = {}  # type: Dict[str, Dict[str, object]]
    for s in sets:
        t0 = time.perf_counter()
        anns, dets, secs, skipped = run_model(model, s)
        conversion = None
        if s.head_boxes and s.convert_fit is not None:
            key = s.convert_fit.name
            if key not in fits:
                fa, fd, _, _ = run_model(model, s.convert_fit)
                fits[key] = fit_box_conversion(fa, fd, s.convert_fit.iou)
            conversion = fits[key]
        rep = score_set(s, anns, dets, three, conversion)
        rep["ms_per_image"] = round(1000 * secs / max(len(anns), 1), 1)
        if skipped:
            rep["skipped"] = skipped
        out[s.name] = rep
        if log is not None:
            log("{} on {}: {} images in {:.0f} s".format(getattr(model, "name", "model"), s.name, len(anns),
                                                         time.perf_counter() - t0))
    return out


def evaluate_models(factories: Dict[str, Callable[[], Any]], sets: Sequence[EvalSet],
                    log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """{"sets": {name: {data, images, iou, ...}}, "models": {model: {set: report}}, "summary": {model: line},
    "seconds": {model: s}}."""
    models, secs = {}, {}  # type: Dict[str, Dict[str, Dict[str, object]]], Dict[str, float]
    for name, f in factories.items():
        t = time.perf_counter()
        models[name] = evaluate_sets(f, sets, log)
        secs[name] = round(time.perf_counter() - t, 1)
    info = {s.name: {"data": s.data_dir, "images": len(s.names) if s.names is not None else None, "iou": s.iou,
                     "head_boxes": s.head_boxes,
                     "conversion_fitted_on": s.convert_fit.name if s.convert_fit is not None else None}
            for s in sets}
    return {"sets": info, "models": models, "seconds": secs,
            "summary": {m: summary_line(m, r) for m, r in models.items()}}


def _mean(xs: Sequence[Optional[float]]) -> Optional[float]:
    v = [x for x in xs if x is not None]
    return round(float(np.mean(v)), 3) if v else None


def summary_line(model: str, reps: Dict[str, Dict[str, object]]) -> str:
    """One line across every set: gate balanced accuracy (mean, worst), no face (mean, worst), masked called
    incorrect (worst; sure only in brackets), mask/no-mask mAP (mean over sets at their IoU)."""
    img = {k: v["image"] for k, v in reps.items()}  # type: Dict[str, Any]

    def worst(key: str, low: bool) -> Tuple[Optional[float], str]:
        xs = [(x[key], k) for k, x in img.items() if x.get(key) is not None]
        if not xs:
            return None, ""
        return min(xs) if low else max(xs)

    def mean(key: str) -> Optional[float]:
        return _mean([x.get(key) for x in img.values()])

    bal, nof, inc, sure = worst("balanced_accuracy", True), worst("no_face_rate", False), \
        worst("masked_called_incorrect", False), worst("masked_sure_incorrect", False)
    maps = [r["ap"]["map_2class"] for r in reps.values()]  # type: ignore[index]
    return ("{}: gate bal.acc mean {} (worst {} on {}; strict mean {}), no face mean {} (worst {} on {}), "
            "masked->incorrect mean {} worst {} on {} (sure {}), unmasked->incorrect mean {}, mask/no-mask mAP mean {} "
            "over {} sets").format(
        model, mean("balanced_accuracy"), bal[0], bal[1], mean("strict_balanced_accuracy"),
        mean("no_face_rate"), nof[0], nof[1], mean("masked_called_incorrect"), inc[0], inc[1], sure[0],
        mean("unmasked_called_incorrect"), _mean(maps), len(reps))


def _f(x: Any, pct: bool = False) -> str:
    if x is None:
        return "—"
    return "{:.1f} %".format(100 * x) if pct else "{:.3f}".format(x)


def markdown_tables(result: Dict[str, Any]) -> str:
    """Three tables (detection AP, faces found, the gate's image-level view), a row per set and model."""
    models = result["models"]  # type: Dict[str, Dict[str, Dict[str, Any]]]
    reports = [(s, m, reps[s]) for s in result["sets"] for m, reps in models.items() if reps.get(s) is not None]
    lines = ["| set | model | IoU | mAP mask/no-mask | AP with / without | 3-class mAP | AP incorrect "
             "| head-converted mAP@0.5 / recall | ms/img |", "|---|---|---|---|---|---|---|---|---|"]
    for s, m, r in reports:
        ap, conv = r["ap"], r.get("converted") or {}
        a2 = ap["ap_2class"]
        a3 = ap.get("ap_3class") or {}
        lines.append("| {} | {} | {} | {} | {} / {} | {} | {} | {} | {} |".format(
            s, m, ap["iou"], _f(ap["map_2class"]), _f(a2["with_mask"]), _f(a2["without_mask"]),
            _f(ap.get("map_3class")), _f(a3.get("mask_weared_incorrect")),
            "{} / {}".format(_f(conv.get("map_2class")), _f(conv.get("recall"))) if conv else "",
            r["ms_per_image"]))
    lines += ["", "| set | model | faces | recall | mask/no-mask acc. on found | found called incorrect "
                  "| false det./img |", "|---|---|---|---|---|---|---|"]
    for s, m, r in reports:
        fd = r["found"]
        lines.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            s, m, fd["faces"], _f(fd["recall"]), _f(fd["class_accuracy"]), _f(fd["called_incorrect"], True),
            fd["false_per_image"]))
    lines += ["", "| set | model | images (mask / no mask / incorrect) | **balanced acc.** | strict (3-class) "
                  "| no face | wrong face | masked → incorrect (sure) | unmasked → incorrect (sure) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s, m, r in reports:
        im = r["image"]
        lines.append("| {} | {} | {} ({} / {} / {}) | {} | {} | {} | {} | {} ({}) | {} ({}) |".format(
            s, m, im["images"], im["with_mask_images"], im["without_mask_images"], im["incorrect_images"],
            _f(im["balanced_accuracy"]), _f(im.get("strict_balanced_accuracy")), _f(im["no_face_rate"], True),
            _f(im["wrong_face_rate"], True),
            _f(im["masked_called_incorrect"], True), _f(im.get("masked_sure_incorrect"), True),
            _f(im["unmasked_called_incorrect"], True), _f(im.get("unmasked_sure_incorrect"), True)))
    return "\n".join(lines)


def side_by_side(result: Dict[str, Any]) -> str:
    """Two compact tables, a row per set and a column per model: the gate's image-level view (balanced
    accuracy / no face / masked called incorrect) and detection (mask/no-mask mAP at the set's IoU; recall;
    class accuracy on found faces; the head-converted mAP@0.5 where fitted)."""
    models = result["models"]  # type: Dict[str, Dict[str, Dict[str, Any]]]
    names = list(models)
    head = "| set | " + " | ".join(names) + " |"
    rule = "|---|" + "---|" * len(names)
    out = ["gate, image level (largest face): balanced mask/no-mask accuracy / no face / masked called incorrect "
           "(sure: the calls that deny)",
           "", head, rule]
    for s in result["sets"]:
        cells = []
        for m in names:
            im = models[m].get(s, {}).get("image")
            cells.append("{} / {} / {} ({})".format(
                _f(im["balanced_accuracy"]), _f(im["no_face_rate"], True), _f(im["masked_called_incorrect"], True),
                _f(im.get("masked_sure_incorrect"), True)) if im else "")
        out.append("| {} | {} |".format(s, " | ".join(cells)))
    out += ["", "detection: mask/no-mask mAP at the set's IoU / recall of faces / mask-no-mask accuracy on found "
                "faces [/ head-converted mAP@0.5]", "", head, rule]
    for s in result["sets"]:
        cells = []
        for m in names:
            r = models[m].get(s)
            if r is None:
                cells.append("")
                continue
            conv = r.get("converted")
            cells.append("{} / {} / {}{}".format(_f(r["ap"]["map_2class"]), _f(r["found"]["recall"]),
                                                 _f(r["found"]["class_accuracy"]),
                                                 " / {}".format(_f(conv["map_2class"])) if conv else ""))
        out.append("| {} (IoU {}) | {} |".format(s, result["sets"][s].get("iou", ""), " | ".join(cells)))
    return "\n".join(out)


def split_names(split: str, splits_dir: Optional[str] = None) -> List[str]:
    from kiosk.models.selection import engines_dir

    path = os.path.join(splits_dir or os.path.join(str(engines_dir()), "splits"), split + ".txt")
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


def default_sets(wanted: Sequence[str] = SETS, split: str = "test", facemask_dir: Optional[str] = None,
                 mask_wearing_dir: Optional[str] = None, frames_root: str = os.path.join("out", "ood", "frames"),
                 seed: int = 0, log: Optional[Callable[[str], None]] = None) -> List[EvalSet]:
    """The sets of issue 12, in :data:`SETS` order: facemask ``split`` (IoU 0.5), mask_wearing check (IoU 0.3,
    conversion fitted on mask_wearing_train; with ``split`` "val", for choices: mask_wearing_train itself), and
    the ``frame`` / ``paste`` / ``crop`` variant of each
    (:mod:`kiosk.train.framing`, generated once into ``frames_root`` and reused while unchanged)."""
    from kiosk.models.selection import repo_root
    from kiosk.train.evaluate import load_eval_set
    from kiosk.train.framing import cached_variant

    shared = os.path.join(str(repo_root()), "..", "shared", "data")
    fm = os.path.normpath(facemask_dir or os.path.join(shared, "facemask"))
    mw = os.path.normpath(mask_wearing_dir or os.path.join(shared, "mask_wearing"))
    unknown = [w for w in wanted if w not in SETS]
    if unknown:
        raise ValueError("unknown set(s) {} (known: {})".format(", ".join(unknown), ", ".join(SETS)))
    mw_train = EvalSet("mask_wearing_train", mw, split_names("mask_wearing_train"), 0.3, True)
    # choices (split "val") are made on mask_wearing's train half, never on the check half it withholds
    mw_name = "mask_wearing_train" if split == "val" else "mask_wearing_check"
    base = {"facemask": EvalSet("facemask_" + split, fm, split_names(split), 0.5),
            "mask_wearing": EvalSet(mw_name, mw, split_names(mw_name), 0.3, True, mw_train)}
    out = []
    for w in wanted:
        src_key = next(k for k in ("mask_wearing", "facemask") if w.startswith(k))
        b = base[src_key]
        variant = w[len(src_key) + 1:] if w != src_key else ""
        if not variant:
            out.append(b)
            continue
        name = "{}_{}".format(b.name, variant)
        folder = os.path.join(frames_root, name)
        anns, _ = load_eval_set(b.data_dir, b.names)
        m = cached_variant(b.data_dir, anns, variant, folder, seed)
        if log is not None:
            log("{}: {} frames in {}".format(name, m["frames"], folder))
        out.append(EvalSet(name, folder, None, b.iou, b.head_boxes, b.convert_fit))
    return out
