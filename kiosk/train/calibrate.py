"""Calibrating the mask classifier's "incorrect" (issue 12): a temperature, a log-odds shift and a "sure" threshold τ.

The classifier over-calls the rare class ``mask_weared_incorrect``: correctly masked faces read as
"incorrect", and at the gate each of those residents would be told to fix a mask they already wear
correctly. Here:

1. the classifier's probabilities are calibrated by one temperature T (``softmax(log p / T)``), fitted by
   negative log-likelihood (Guo et al. 2017, "On Calibration of Modern Neural Networks"); T does not
   change which class is the arg-max, only how sure the model says it is;
2. a shift b <= 0 of the log-odds of ``incorrect`` (logit adjustment, Menon et al. 2021, "Long-tail
   learning via logit adjustment"): "incorrect" is the arg-max only when it beats the other classes by
   that margin. The fit takes the most negative b (0.25 steps, down to :data:`BIAS_MIN`) at which the
   arg-max still finds all but :data:`RECALL_DROP` of the truly incorrect faces, pooled over the fitting
   sets: it drops the false "incorrect" calls as far as it can without missing real ones;
3. an "incorrect is sure" threshold τ is chosen on the calibrated probability of ``incorrect`` (after the
   shift): the smallest τ for which at most ``target`` (2 %) of the correctly masked faces are read as a sure
   "incorrect" on EVERY fitting set (so the larger set cannot hide the other). Below τ the kiosk reads
   the face as :attr:`kiosk.core.events.Mask.UNSURE`: it asks the resident to adjust and keeps looking.

Fitting data only: the facemask VAL split and the calibration half of the public-domain mask_wearing set
(``engines/splits/mask_wearing_train.txt``). The facemask TEST split and ``mask_wearing_check.txt`` are
scored with the fitted values for the report, never used to choose them.

The faces are the ones the kiosk classifies: the kiosk's face detector runs and its detections are
matched one-to-one to the ground truth (IoU 0.5 on facemask, whose boxes are face boxes like the
detector's; IoU 0.3 on mask_wearing, whose boxes cover the whole head); each matched detection's crop is
classified without flip averaging, as at the gate. Unmatched detections and missed faces are not part of a
calibration (they are the detector's figures). Each split is used twice:

- ``photo``: the whole photo, the face detector at its photo settings (800 px, score >= 0.1) so the many
  small crowd faces are found;
- ``kiosk``: every face at least :data:`MIN_SOURCE_PX` tall is cropped, with the photo around it, into a
  640x480 frame at a gate camera's distance (face 96-192 px tall, at most 4x upscaled), and the kiosk's
  own live detector (``detect_scale`` 0.5) reads that frame. Close faces are where the model over-calls
  "incorrect" (issue 12); the crowd photos alone hide it;
- ``frame`` / ``paste`` / ``crop``: the kiosk-framed variants of the out-of-distribution evaluation
  (:mod:`kiosk.train.framing`, the same generator and seed as ``dabai-kiosk eval detector``), generated
  for the fitting splits too and read by the kiosk's live detector.

The result goes into the JSON sidecar next to the classifier (``engines/mask_classifier_ft.json``), which
:func:`kiosk.vision.mask.read_calibration` reads when the kiosk loads the model.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.vision.mask import CLASSES, Calibration, calibration_path, read_calibration
from kiosk.vision.tracker import iou_matrix

WITH, WITHOUT, INCORRECT = 0, 1, 2  # class indices (kiosk.vision.mask.CLASSES order)
TARGET = 0.02  # masked faces read as a sure "incorrect", at most, on every fitting set (the goal is 3 %)
# The highest τ the fit may choose. Above it the threshold would not calibrate "incorrect" but switch it off (a
# classifier that is sure of its mistakes cannot be fixed by a threshold): the fit stops here and says the target
# was not met.
TAU_MAX = 0.95
# The shift of "incorrect"'s log-odds: at most this far (e^3 = 20 times less likely), and only while the arg-max
# still finds all but this share of the truly incorrect faces of the fitting sets.
BIAS_MIN = -3.0
RECALL_DROP = 0.05


MIN_SOURCE_PX = 32  # faces smaller than this in the photo are not framed (they would be upscaled past 4x)
FRAME_W, FRAME_H = 640, 480


@dataclass(frozen=True)
class EvalSet:
    name: str  # e.g. facemask_val
    dataset: str  # folder name under the data root: facemask | mask_wearing
    split: str  # engines/splits/<split>.txt
    iou: float  # one-to-one match of detections to ground truth
    use: str  # "fit" or "report"
    variant: str = ""  # "": the photos; "kiosk": own kiosk frames; "frame" / "paste" / "crop": kiosk.train.framing

    @property
    def framed(self) -> bool:
        return bool(self.variant)


VARIANTS = ("", "kiosk", "frame", "paste", "crop")


def _sets(dataset: str, split: str, name: str, iou: float, use: str) -> Tuple[EvalSet, ...]:
    return tuple(EvalSet(name + ("_" + v if v else ""), dataset, split, iou, use, v) for v in VARIANTS)


FIT_SETS = _sets("facemask", "val", "facemask_val", 0.5, "fit") + _sets(
    "mask_wearing", "mask_wearing_train", "mask_wearing_train", 0.3, "fit")
REPORT_SETS = _sets("facemask", "test", "facemask_test", 0.5, "report") + _sets(
    "mask_wearing", "mask_wearing_check", "mask_wearing_check", 0.3, "report")
FRAMES_DIR = os.path.join("out", "calibrate", "frames")  # where the framing variants are generated (a cache)
NEVER_FIT = ("test", "mask_wearing_check")  # the withheld splits: reporting only


@dataclass
class Faces:
    """The kiosk's raw classifier probabilities of the faces it found and matched, with the true class."""

    probs: np.ndarray  # (N, 3) raw (uncalibrated) probabilities
    labels: np.ndarray  # (N,) true class index
    heights: np.ndarray  # (N,) detection box height in image pixels
    images: int = 0
    gt: int = 0  # ground-truth faces in those images


def match_one_to_one(det: np.ndarray, gt: np.ndarray, thr: float) -> List[Tuple[int, int]]:
    """(detection, GT) index pairs, greedy on the highest IoU first, each at most once, IoU >= ``thr``."""
    iou = iou_matrix(det, gt)
    pairs: List[Tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    used_d, used_g = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        d, g = divmod(int(flat), iou.shape[1])
        if iou[d, g] < thr:
            break
        if d not in used_d and g not in used_g:
            used_d.add(d)
            used_g.add(g)
            pairs.append((d, g))
    return pairs


def split_names(split: str, splits_dir: str) -> List[str]:
    with open(os.path.join(splits_dir, split + ".txt"), encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip()]


def collect(detector, data_dir: str, names: Optional[Sequence[str]], iou: float) -> Faces:  # type: ignore[no-untyped-def]
    """Run ``detector`` (a :class:`kiosk.vision.mask.MaskDetector`) on the listed images of a VOC folder and keep
    the raw probabilities of the detections matched to a ground-truth face."""
    from kiosk.train.evaluate import load_eval_set, run_detector

    anns, _ = load_eval_set(data_dir, names)
    kept, raws, _, _ = run_detector(detector, data_dir, anns)
    probs, labels, heights = [], [], []
    gt = 0
    for a, r in zip(kept, raws):
        gt += len(a.boxes)
        for d, g in match_one_to_one(r["boxes"], a.boxes, iou):
            probs.append(r["probs"][d])
            labels.append(int(a.labels[g]))
            heights.append(float(r["boxes"][d, 3] - r["boxes"][d, 1]))
    return Faces(np.asarray(probs, np.float32).reshape(-1, len(CLASSES)), np.asarray(labels, np.int64),
                 np.asarray(heights, np.float32), len(kept), gt)


def kiosk_frame(image: np.ndarray, box: np.ndarray, face_px: float, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """A 640x480 frame in which ``box`` of ``image`` is ``face_px`` tall, a little off centre as a resident
    stands, the photo around it as the surroundings (mirrored at the photo's edges); and the 2x3 affine map
    from photo to frame."""
    import cv2

    s = face_px / max(float(box[3] - box[1]), 1.0)
    fx = FRAME_W / 2 + rng.uniform(-0.15, 0.15) * FRAME_W
    fy = FRAME_H * rng.uniform(0.38, 0.5)
    m = np.array([[s, 0, fx - s * (box[0] + box[2]) / 2], [0, s, fy - s * (box[1] + box[3]) / 2]], np.float32)
    frame = cv2.warpAffine(image, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR if s >= 1 else cv2.INTER_AREA,
                           borderMode=cv2.BORDER_REFLECT_101)
    return frame, m


def collect_framed(detector, data_dir: str, names: Sequence[str], iou: float, seed: int = 0,  # type: ignore[no-untyped-def]
                   min_source_px: float = MIN_SOURCE_PX) -> Faces:
    """Each face of at least ``min_source_px`` in the listed photos, cropped into its own kiosk frame
    (:func:`kiosk_frame`) and read by ``detector`` (the kiosk's live one); the detections are matched one-to-one
    to all ground-truth boxes in the frame and the one matched to the framed face is kept."""
    from kiosk.train.evaluate import load_eval_set, read_image

    anns, _ = load_eval_set(data_dir, names)
    rng = np.random.default_rng(seed)
    probs, labels, heights = [], [], []
    images = gt = 0
    for a in anns:
        img = read_image(os.path.join(data_dir, "images", a.image))
        if img is None:
            continue
        images += 1
        for g, box in enumerate(a.boxes):
            fh = float(box[3] - box[1])
            if fh < min_source_px:
                continue
            gt += 1
            face_px = rng.uniform(96.0, min(192.0, 4.0 * fh)) if 4.0 * fh > 96.0 else 96.0
            frame, m = kiosk_frame(img, box, face_px, rng)
            boxes = a.boxes * np.array([m[0, 0], m[1, 1], m[0, 0], m[1, 1]], np.float32) + np.array(
                [m[0, 2], m[1, 2], m[0, 2], m[1, 2]], np.float32)
            det, _, p, _ = detector.detect_arrays(frame)
            for d, k in match_one_to_one(np.asarray(det, np.float32).reshape(-1, 4), boxes, iou):
                if k == g:
                    probs.append(p[d])
                    labels.append(int(a.labels[g]))
                    heights.append(float(det[d][3] - det[d][1]))
    return Faces(np.asarray(probs, np.float32).reshape(-1, len(CLASSES)), np.asarray(labels, np.int64),
                 np.asarray(heights, np.float32), images, gt)


def collect_set(s: EvalSet, photo_detector, kiosk_detector, data_root: str, splits_dir: str,  # type: ignore[no-untyped-def]
                frames_dir: str = FRAMES_DIR) -> Faces:
    names = split_names(s.split, splits_dir)
    folder = os.path.join(data_root, s.dataset)
    if s.variant == "kiosk":
        return collect_framed(kiosk_detector, folder, names, s.iou)
    if s.variant:
        from kiosk.train.evaluate import load_eval_set
        from kiosk.train.framing import cached_variant

        anns, _ = load_eval_set(folder, names)
        out = os.path.join(frames_dir, "{}_{}".format(s.split, s.variant))
        cached_variant(folder, anns, s.variant, out, 0)
        return collect(kiosk_detector, out, None, s.iou)
    return collect(photo_detector, folder, names, s.iou)


def nll(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true classes after temperature ``temperature``."""
    p = Calibration(temperature=temperature).apply(probs)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0))))


def fit_temperature(probs: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """The temperature that minimises the NLL (golden-section search on log T; the NLL is unimodal in T)."""
    if len(labels) == 0:
        return 1.0
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(probs, labels, float(np.exp(c))), nll(probs, labels, float(np.exp(d)))
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(probs, labels, float(np.exp(c)))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(probs, labels, float(np.exp(d)))
    return round(float(np.exp((a + b) / 2)), 4)


def ece(probs_cal: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the arg-max confidence (equal-width bins)."""
    if len(labels) == 0:
        return 0.0
    conf = probs_cal.max(1)
    right = probs_cal.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs(float(right[sel].mean()) - float(conf[sel].mean()))
    return float(total)


def _share(hit: np.ndarray, of: np.ndarray) -> Optional[float]:
    n = int(of.sum())
    return round(float((hit & of).sum()) / n, 4) if n else None


def rates(faces: Faces, calibration: Calibration, min_height: float = 0.0) -> Dict[str, object]:
    """What the kiosk would read, face by face: the share of correctly masked / unmasked faces read as a SURE
    "incorrect" (a denial at the gate) and as UNSURE (an "adjust your mask" prompt), and the share of truly
    incorrect faces read as a sure "incorrect" (recall) or as unsure."""
    keep = faces.heights >= min_height
    p = calibration.apply(faces.probs[keep])
    y = faces.labels[keep]
    arg = p.argmax(1) if len(p) else np.zeros(0, np.int64)
    called = arg == INCORRECT
    sure = called & (p[:, INCORRECT] >= calibration.incorrect_sure) if len(p) else called
    unsure = called & ~sure
    masked, unmasked, incorrect = y == WITH, y == WITHOUT, y == INCORRECT
    return {
        "faces": int(len(y)), "with": int(masked.sum()), "without": int(unmasked.sum()), "incorrect": int(incorrect.sum()),
        "masked_to_incorrect": _share(sure, masked), "masked_to_unsure": _share(unsure, masked),
        "unmasked_to_incorrect": _share(sure, unmasked), "unmasked_to_unsure": _share(unsure, unmasked),
        "incorrect_recall_sure": _share(sure, incorrect), "incorrect_to_unsure": _share(unsure, incorrect),
        "masked_to_incorrect_n": int((sure & masked).sum()), "unmasked_to_incorrect_n": int((sure & unmasked).sum()),
        "incorrect_sure_n": int((sure & incorrect).sum()),
    }


def meets(sets: Sequence[Faces], calibration: Calibration, target: float) -> bool:
    """At most ``target`` of the masked faces of every set read as a sure "incorrect"."""
    return all((rates(f, calibration)["masked_to_incorrect"] or 0.0) <= target for f in sets)


def incorrect_recall(sets: Sequence[Faces], calibration: Calibration) -> Optional[float]:
    """The share of the truly incorrect faces, pooled over ``sets``, whose arg-max is "incorrect"."""
    hit = n = 0
    for f in sets:
        keep = f.labels == INCORRECT
        if keep.any():
            hit += int((calibration.apply(f.probs[keep]).argmax(1) == INCORRECT).sum())
            n += int(keep.sum())
    return hit / n if n else None


def choose_bias(sets: Sequence[Faces], temperature: float, recall_drop: float = RECALL_DROP,
                bias_min: float = BIAS_MIN) -> float:
    """The most negative shift of "incorrect"'s log-odds (0.25 steps, down to ``bias_min``) at which the
    arg-max recall of the truly incorrect faces (pooled) is at least its unshifted value minus ``recall_drop``;
    0 when the sets hold no incorrect face (nothing to keep, so nothing is shifted)."""
    base = incorrect_recall(sets, Calibration(temperature))
    if base is None:
        return 0.0
    best = 0.0
    for b in np.arange(-0.25, bias_min - 1e-9, -0.25):
        r = incorrect_recall(sets, Calibration(temperature, 0.0, float(b)))
        if r is None or r < base - recall_drop - 1e-9:
            break
        best = float(b)
    return round(best, 2)


def choose_tau(sets: Sequence[Faces], temperature: float, target: float = TARGET, tau_max: float = TAU_MAX,
               bias: float = 0.0) -> float:
    """The smallest τ (0.01 steps, at most ``tau_max``) at which every set has at most ``target`` of its masked
    faces read as a sure "incorrect" (after the shift ``bias``); ``tau_max`` when none does (see
    :data:`TAU_MAX`). The smallest keeps as much of the true "incorrect" recall as the target allows."""
    for tau in np.round(np.arange(0.0, tau_max + 1e-9, 0.01), 2):
        if meets(sets, Calibration(temperature, float(tau), bias), target):
            return float(tau)
    return float(tau_max)


def curve(faces: Faces, temperature: float, taus: Sequence[float], bias: float = 0.0) -> List[Dict[str, object]]:
    """τ vs masked → sure incorrect, unmasked → sure incorrect and sure-incorrect recall on one set."""
    out = []
    for tau in taus:
        r = rates(faces, Calibration(temperature, float(tau), bias))
        out.append({"tau": float(tau), "masked_to_incorrect": r["masked_to_incorrect"],
                    "unmasked_to_incorrect": r["unmasked_to_incorrect"],
                    "incorrect_recall_sure": r["incorrect_recall_sure"]})
    return out


def calibrate(photo_detector, kiosk_detector, data_root: str, splits_dir: str,  # type: ignore[no-untyped-def]
              target: float = TARGET, report: bool = False, min_height: float = 0.0,
              taus: Sequence[float] = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)) -> Dict[str, object]:
    """Fit T, the shift of "incorrect" and τ on the fitting sets; with ``report``, score the withheld sets too
    (after the fit, with the fitted values: they never influence them). Returns the report."""
    fit = {s.name: collect_set(s, photo_detector, kiosk_detector, data_root, splits_dir) for s in FIT_SETS}
    probs = np.concatenate([f.probs for f in fit.values()])
    labels = np.concatenate([f.labels for f in fit.values()])
    temperature = fit_temperature(probs, labels)
    fit_sets = list(fit.values())
    bias = choose_bias(fit_sets, temperature)
    tau = choose_tau(fit_sets, temperature, target, bias=bias)
    after = Calibration(temperature, tau, bias)
    target_met = meets(fit_sets, after, target)
    before = Calibration()
    out: Dict[str, object] = {
        "temperature": temperature, "incorrect_sure": tau, "incorrect_bias": bias,
        "incorrect_recall_argmax": [_r4(incorrect_recall(fit_sets, Calibration(temperature))),
                                    _r4(incorrect_recall(fit_sets, after))],
        "target_masked_to_incorrect": target,
        "target_met_on_fitting_sets": target_met, "tau_max": TAU_MAX,
        "nll_before": round(nll(probs, labels, 1.0), 4), "nll_after": round(nll(probs, labels, temperature), 4),
        "ece_before": round(ece(before.apply(probs), labels), 4), "ece_after": round(ece(after.apply(probs), labels), 4),
        "sets": {}, "curve": {name: curve(fit[name], temperature, sorted(set(list(taus) + [tau])), bias) for name in fit},
    }
    sets = dict(fit)
    if report:
        for s in REPORT_SETS:
            sets[s.name] = collect_set(s, photo_detector, kiosk_detector, data_root, splits_dir)
    for name, faces in sets.items():
        use = "fit" if name in fit else "report"
        entry = {"use": use, "images": faces.images, "gt_faces": faces.gt,
                 "before": rates(faces, before, min_height), "after": rates(faces, after, min_height)}
        out["sets"][name] = entry  # type: ignore[index]
    return out


def write_sidecar(mask_model: str, result: Dict[str, object], detector_desc: str, command: str) -> str:
    """Write temperature and τ with how they were fitted into the classifier's JSON sidecar; other keys of an
    existing sidecar are kept."""
    path = calibration_path(mask_model)
    meta: Dict[str, object] = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    sets = result["sets"]  # type: ignore[assignment]
    fitted = {
        "temperature": result["temperature"],
        "incorrect_sure": result["incorrect_sure"],
        "incorrect_bias": result.get("incorrect_bias", 0.0),
        "calibration": {
            "what": "probabilities = softmax(log p / temperature + incorrect_bias on 'mask_weared_incorrect'); an "
                    "arg-max 'mask_weared_incorrect' whose calibrated probability is below incorrect_sure is read as "
                    "unsure (the kiosk asks to adjust the mask and keeps looking; it denies only a sure 'incorrect'). "
                    "Issue 12; engines/MODEL_CARD.md",
            "fitted_on": [s.name + " (engines/splits/{}.txt, {}, IoU {})".format(
                s.split, "{} variant, live detector".format(s.variant) if s.framed else "photos", s.iou)
                for s in FIT_SETS],
            "never_fitted_on": [s + ".txt" for s in NEVER_FIT],
            "detector": detector_desc,
            "target_masked_to_incorrect": result["target_masked_to_incorrect"],
            "target_met_on_fitting_sets": result.get("target_met_on_fitting_sets"),
            "incorrect_recall_argmax": result.get("incorrect_recall_argmax"),
            "nll": [result["nll_before"], result["nll_after"]],
            "ece": [result["ece_before"], result["ece_after"]],
            "rates": {name: {"use": e["use"], "before": _short(e["before"]), "after": _short(e["after"])}  # type: ignore[index]
                      for name, e in sets.items()},  # type: ignore[union-attr]
            "date": datetime.date.today().isoformat(),
            "command": command,
        },
    }
    # the fitted values first, whatever keys an older sidecar had
    meta = dict(fitted, **{k: v for k, v in meta.items() if k not in fitted})
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)
    read_calibration(mask_model)  # what was written must load
    return path


def _r4(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(float(x), 4)


def _short(r: Dict[str, object]) -> Dict[str, object]:
    keys = ("faces", "with", "without", "incorrect", "masked_to_incorrect", "masked_to_unsure", "unmasked_to_incorrect",
            "incorrect_recall_sure")
    return {k: r[k] for k in keys}
