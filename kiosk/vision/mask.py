"""Mask classification of face crops, and the combined face + mask detector of the kiosk.

The classifier is the project's own small CNN (``engines/mask_classifier.onnx``, trained by
``kiosk.train.mask_classifier``; see ``engines/MODEL_CARD.md``). Its input is a batch of
face crops: the face box grown by :data:`CROP_MARGIN` on every side, resampled to
``CROP_SIZE`` x ``CROP_SIZE``, RGB, ``(x / 255 - MEAN) / STD``, NCHW float32.
Crop extraction is one vectorized bilinear gather for all faces of a frame (with box-filter
supersampling when a face is much larger than the crop), and the same function makes the
training crops, so training and run time see identical pixels.

Calibration (issue 12): the classifier's probabilities go through a temperature and a shift of the rare
class's log-odds (``incorrect_bias``: "incorrect" must win by that margin, so a correctly worn mask is
rarely called incorrect), and an arg-max "incorrect" below the calibrated threshold ``incorrect_sure`` is
read as :attr:`Mask.UNSURE` (the kiosk asks the resident to adjust and keeps looking; only a sure
"incorrect" denies). All three come from the JSON
sidecar next to the classifier (``engines/mask_classifier_ft.json``, written by ``dabai-kiosk train
calibrate``); without one every "incorrect" is sure and the probabilities are the model's, as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.core.events import Mask
from kiosk.inference import ModelError, Runner, backend_summary, describe_io, input_array, load_model
from kiosk.vision.faces import DEFAULT_SCORE_THRESHOLD, FaceDetector
from kiosk.vision.image import to_bgr

CLASSES = (Mask.WITH, Mask.WITHOUT, Mask.INCORRECT)  # output order of the model
_INCORRECT = CLASSES.index(Mask.INCORRECT)
CROP_SIZE = 64
CROP_MARGIN = 0.15  # fraction of the box width / height added on each side
MEAN = 0.5
STD = 0.25

# Detector settings. "live" is the kiosk's own (a 640x480 camera frame at its own size, ~10 ms on
# 2 CPU cores). "photo" is for evaluating still photos of crowds (the dataset: 400 px images with
# ~24 px faces): images upscaled to an 800 px long side, every face with YuNet score >= 0.1 kept
# (low thresholds only add low-ranked detections, which AP rewards), and the classifier averaged
# over the crop and its mirror image. Same code path, different parameters; chosen on the VAL split.
# The coarse second pass of the face detector (a face that fills the frame; kiosk.vision.faces) is on for
# the kiosk and ``dabai-kiosk detect``, off in photo mode: crowd photos have no such faces, and the
# published photo-mode figures were measured without it.
# When neither pass finds a face, the live detector looks once more with the frame at its own size (the
# kiosk runs the first pass at ``vision.detect_scale`` 0.5): a blurred or low-contrast face 100-300 px tall is
# sometimes seen only there. Frames with a face cost the same; only empty frames pay for it. Issue 12's
# kiosk-framed sets: no face 7.6 -> 3.5 % (facemask VAL pastes), 3.6 -> 1.8 % (mask_wearing_train pastes).
LIVE_SEARCH_SCALES = (1.0,)
MODES: Dict[str, Dict[str, object]] = {
    "live": {"face_score_threshold": DEFAULT_SCORE_THRESHOLD, "min_long_side": 640, "flip_tta": False, "coarse_pass": True,
             "search_scales": LIVE_SEARCH_SCALES},
    "photo": {"face_score_threshold": 0.1, "min_long_side": 800, "flip_tta": True, "coarse_pass": False},
}


MAX_BIAS = 5.0  # |incorrect_bias| beyond this would not calibrate "incorrect" but switch it on or off


@dataclass(frozen=True)
class Calibration:
    """How the classifier's probabilities are read: ``softmax(log p / temperature + incorrect_bias on
    "incorrect")``, and an arg-max ``incorrect`` is sure only when its calibrated probability is at least
    ``incorrect_sure`` (τ). The temperature never changes the arg-max; a negative ``incorrect_bias`` (a
    log-prior shift, as in logit adjustment) makes "incorrect" win only by that margin in log-odds. The
    defaults change nothing (every "incorrect" is sure)."""

    temperature: float = 1.0
    incorrect_sure: float = 0.0
    incorrect_bias: float = 0.0

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """(N,3) probabilities -> (N,3) calibrated probabilities."""
        p = np.asarray(probs, np.float32)
        if (self.temperature == 1.0 and self.incorrect_bias == 0.0) or len(p) == 0:
            return p
        z = np.log(np.clip(p, 1e-12, 1.0)) / np.float32(self.temperature)
        z[:, _INCORRECT] += np.float32(self.incorrect_bias)
        return _softmax(z)

    def readings(self, calibrated: np.ndarray) -> List[Tuple[Mask, bool]]:
        """(class, sure) of each row of calibrated probabilities; only an ``incorrect`` can be unsure."""
        out = []
        for row in np.asarray(calibrated).reshape(-1, len(CLASSES)):
            cls = CLASSES[int(row.argmax())]
            out.append((cls, cls != Mask.INCORRECT or float(row[_INCORRECT]) >= self.incorrect_sure))
        return out


def calibration_path(model_path: str) -> str:
    """``engines/mask_classifier_ft.onnx`` -> ``engines/mask_classifier_ft.json``."""
    return os.path.splitext(str(model_path))[0] + ".json"


def read_calibration(model_path: str) -> Calibration:
    """The calibration in the classifier's JSON sidecar, the defaults (no change) when there is none. A
    sidecar that is present but unreadable or out of range is an error: a wrong threshold denies residents."""
    side = calibration_path(model_path)
    if not os.path.isfile(side):
        return Calibration()
    try:
        with open(side, "r", encoding="utf-8") as f:
            meta = json.load(f)
        if not isinstance(meta, dict):
            raise ValueError("expected a JSON object")
        temperature = float(meta.get("temperature", 1.0))
        tau = float(meta.get("incorrect_sure", 0.0))
        bias = float(meta.get("incorrect_bias", 0.0))
    except (OSError, TypeError, ValueError) as exc:
        raise ModelError(side, "cannot read the mask classifier's calibration: {}".format(exc)) from None
    if not 0.01 <= temperature <= 100.0 or not 0.0 <= tau <= 1.0 or not -MAX_BIAS <= bias <= MAX_BIAS:
        raise ModelError(side, "calibration out of range: temperature {} (0.01..100), incorrect_sure {} (0..1), "
                               "incorrect_bias {} (-{m}..{m})".format(temperature, tau, bias, m=MAX_BIAS))
    return Calibration(temperature, tau, bias)


@dataclass(frozen=True)
class Detection:
    box: Tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels
    mask: Mask  # the classifier's arg-max class (never UNSURE; see ``reading``)
    confidence: float  # calibrated probability of ``mask``
    face_score: float  # YuNet face score
    landmarks: Tuple[Tuple[float, float], ...]
    probs: Tuple[float, ...] = ()  # calibrated probabilities in CLASSES order
    sure: bool = True  # False: an "incorrect" below the calibrated threshold

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def reading(self) -> Mask:
        """What the gate acts on: the class, or :attr:`Mask.UNSURE` for an "incorrect" that is not sure."""
        return self.mask if self.sure else Mask.UNSURE


def crop_boxes(
    image: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE, margin: float = CROP_MARGIN, max_super: int = 4
) -> np.ndarray:
    """Resample every box of ``image`` (H,W,C uint8) to (N, size, size, C) float32 in 0..255.

    Each box is grown by ``margin`` x its size on every side. Pixels outside the image repeat
    the border. Each output pixel is the mean of k x k bilinear samples (pixel-centre
    convention), k = ceil(box / size) capped at ``max_super``, so large faces are not aliased.
    Bilinear sampling followed by box averaging is separable, so each crop is computed as
    ``Ry @ region @ Rx^T`` with small resampling matrices built in one vectorized step; a crop
    never depends on the other boxes of the batch.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n, c = len(b), img.shape[2]
    out = np.zeros((n, size, size, c), np.float32)
    if n == 0 or img.size == 0:
        return out
    h, w = img.shape[:2]
    bw = np.maximum(b[:, 2] - b[:, 0], 1.0)
    bh = np.maximum(b[:, 3] - b[:, 1], 1.0)
    x0 = b[:, 0] - margin * bw
    y0 = b[:, 1] - margin * bh
    cw = bw * (1 + 2 * margin)
    ch = bh * (1 + 2 * margin)
    ks = np.clip(np.ceil(np.maximum(cw, ch) / size), 1, max_super).astype(np.int64)
    for i in range(n):
        ry, ylo, yhi = _resample_matrix(float(y0[i]), float(ch[i]), size, int(ks[i]), h)
        rx, xlo, xhi = _resample_matrix(float(x0[i]), float(cw[i]), size, int(ks[i]), w)
        region = img[ylo:yhi, xlo:xhi].astype(np.float32)  # (hr, wr, C)
        tmp = np.tensordot(ry, region, axes=(1, 0))  # (size, wr, C)
        out[i] = np.einsum("xw,ywc->yxc", rx, tmp, optimize=True)
    return out


def _resample_matrix(start: float, length: float, size: int, k: int, limit: int) -> Tuple[np.ndarray, int, int]:
    """(size, span) weights of k bilinear samples per output pixel along one axis, averaged;
    plus the [lo, hi) index range of the image the weights refer to (border clamped)."""
    m = size * k
    t = (np.arange(m, dtype=np.float32) + 0.5) / m
    pos = np.clip(start + t * length - 0.5, 0, limit - 1)
    f = np.floor(pos)
    a = pos - f
    i0 = f.astype(np.int64)
    i1 = np.minimum(i0 + 1, limit - 1)
    lo, hi = int(i0.min()), int(i1.max()) + 1
    mat = np.zeros((size, hi - lo), np.float32)
    row = np.arange(m) // k
    np.add.at(mat, (row, i0 - lo), (1 - a) / k)
    np.add.at(mat, (row, i1 - lo), a / k)
    return mat, lo, hi


def to_model_input(crops_bgr: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """(N,S,S,3) BGR 0..255 -> (N,3,S,S) normalized RGB float32, the classifier's input; written into ``out``
    (a runner's input buffer, :meth:`Runner.input_array`) when given, with the same float32 arithmetic."""
    x = crops_bgr[..., ::-1].transpose(0, 3, 1, 2)
    if out is None or x.dtype != np.float32:
        x = x * (1.0 / 255.0)
        return np.ascontiguousarray(((x - MEAN) / STD).astype(np.float32))
    np.multiply(x, np.float32(1.0 / 255.0), out=out)
    out -= np.float32(MEAN)
    out /= np.float32(STD)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_mask_model(runner: Runner, path: str) -> str:
    """The output to read (``probs``, else a model's only output: logits); raises :class:`ModelError` (one
    line: the file, what was expected, what was found) unless the model takes face crops ``[N,3,H,W]`` and
    gives one score per class ``[N,3]``. Checked when it is loaded, not on every frame."""
    expected = "a mask classifier: one input [N,3,H,W] and one output [N,{}] (probs or logits of {})".format(
        len(CLASSES), "/".join(c.value for c in CLASSES))
    inputs, outputs = runner.input_names, runner.output_names
    shape = runner.input_shape(inputs[0]) if len(inputs) == 1 else []
    name = "probs" if "probs" in outputs else (outputs[0] if len(outputs) == 1 else "")
    out = runner.declared_output_shape(name) if name else None
    if len(inputs) != 1 or len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        problem = "input"
    elif not name:
        problem = "outputs"
    elif out and (len(out) != 2 or (isinstance(out[1], int) and out[1] != len(CLASSES))):
        problem = "output {}".format(name)
    else:
        return name
    hint = " (a face detector?)" if "cls_8" in outputs else ""
    raise ModelError(path, "not a mask classifier (wrong {}): expected {}; found {}{}".format(
        problem, expected, describe_io(runner), hint))


class MaskClassifier:
    """Batch of face crops -> (class, confidence) with classes ``with_mask``, ``without_mask``,
    ``mask_weared_incorrect`` (:class:`kiosk.core.events.Mask`). ``calibration``: the model's sidecar
    (:func:`read_calibration`) unless given."""

    def __init__(self, model_path: str, backend: str = "auto", runner: Optional[Runner] = None,
                 calibration: Optional[Calibration] = None) -> None:
        self.calibration = calibration if calibration is not None else read_calibration(str(model_path))
        self.runner = runner if runner is not None else load_model(model_path, backend)
        self.model_path = str(model_path)
        self.output_name = check_mask_model(self.runner, self.model_path)
        self.input_name = self.runner.input_names[0]
        shape = self.runner.input_shape(self.input_name)
        self.size = int(shape[2]) if isinstance(shape[2], int) else CROP_SIZE
        self._is_prob = self.output_name == "probs"

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N,3,S,S) model input -> (N,3) class probabilities."""
        if len(batch) == 0:
            return np.zeros((0, len(CLASSES)), np.float32)
        y = self.runner.run({self.input_name: batch})[self.output_name]
        y = np.asarray(y, np.float32).reshape(len(batch), -1)
        if y.shape[1] != len(CLASSES):
            raise ModelError(self.model_path, "expected {} outputs, got {}".format(len(CLASSES), y.shape[1]))
        return y if self._is_prob else _softmax(y)

    def classify_boxes(self, frame_bgr: np.ndarray, boxes: np.ndarray, flip: bool = False) -> np.ndarray:
        """Probabilities (N,3) for ``boxes`` (N,4, frame pixels) of a BGR frame; ``flip``: the mean
        over each crop and its mirror image (test-time augmentation, one more batch)."""
        crops = crop_boxes(frame_bgr, boxes, self.size)
        x = to_model_input(crops, input_array(self.runner, self.input_name, (len(crops), 3, self.size, self.size)))
        p = self.probabilities(x)
        if flip and len(x):
            p = 0.5 * (p + self.probabilities(np.ascontiguousarray(x[..., ::-1])))
        return p

    def classify(self, crops_bgr: Sequence[np.ndarray]) -> List[Tuple[Mask, float]]:
        """Whole-image face crops (each any size, BGR/grey/BGRA) -> [(reading, calibrated confidence)]; the
        reading is :attr:`Mask.UNSURE` for an "incorrect" below the calibrated threshold."""
        batch = []
        for c in crops_bgr:
            bgr = to_bgr(c)
            if bgr is None:
                raise ValueError("empty face crop")
            h, w = bgr.shape[:2]
            # the crop already holds the margin: undo it so the same geometry is sampled
            s = 1.0 + 2 * CROP_MARGIN
            box = np.array([[w * CROP_MARGIN / s, h * CROP_MARGIN / s, w - w * CROP_MARGIN / s, h - h * CROP_MARGIN / s]])
            batch.append(to_model_input(crop_boxes(bgr, box, self.size)))
        if not batch:
            return []
        p = self.calibration.apply(self.probabilities(np.concatenate(batch)))
        return [(cls if sure else Mask.UNSURE, float(row.max()))
                for (cls, sure), row in zip(self.calibration.readings(p), p)]


class MaskDetector:
    """Face detector + mask classifier: ``detect(frame) -> [Detection]``, largest face first.

    ``coarse_pass`` (on by default): a face that fills the frame is found too (:class:`FaceDetector`).

    ``MaskDetector.for_mode(face, mask, "live" | "photo")`` applies the settings of :data:`MODES`.
    """

    def __init__(
        self,
        face_model: str,
        mask_model: str,
        backend: str = "auto",
        face_score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        min_face: int = 0,
        flip_tta: bool = False,
        coarse_pass: bool = True,
        **face_kwargs: object,
    ) -> None:
        self.faces = FaceDetector(face_model, backend, score_threshold=face_score_threshold,  # type: ignore[arg-type]
                                  coarse_pass=coarse_pass, **face_kwargs)
        self.classifier = MaskClassifier(mask_model, backend)
        self.min_face = int(min_face)
        self.flip_tta = bool(flip_tta)

    @classmethod
    def for_mode(cls, face_model: str, mask_model: str, mode: str = "live", backend: str = "auto",
                 **overrides: object) -> "MaskDetector":
        if mode not in MODES:
            raise ValueError("unknown detector mode {!r} (known: {})".format(mode, ", ".join(sorted(MODES))))
        kw = dict(MODES[mode])
        kw.update(overrides)
        return cls(face_model, mask_model, backend, **kw)  # type: ignore[arg-type]

    def runners(self) -> Dict[str, Runner]:
        """The models this detector runs, by role."""
        return {"face detector": self.faces.runner, "mask classifier": self.classifier.runner}

    def backend_notes(self) -> List[str]:
        """Why a model runs on another backend than the one first chosen (TensorRT failed), one line each."""
        return ["{} runs on {} ({})".format(role, r.backend, r.note)
                for role, r in self.runners().items() if getattr(r, "note", None)]

    def backend_lines(self) -> List[str]:
        """``face detector: tensorrt (engine cached, zero-copy)`` for each model (``dabai-kiosk doctor``); models
        on the same backend for the same reason share a line (``face detector + mask classifier: ...``)."""
        roles = {}  # type: Dict[str, List[str]]
        for role, r in self.runners().items():
            roles.setdefault(backend_summary(r), []).append(role)
        return ["{}: {}".format(" + ".join(names), summary) for summary, names in roles.items()]

    def watch_backends(self, listener: Callable[[str], None]) -> None:
        """Tell ``listener`` (one line) when a model falls back from TensorRT while running."""
        for role, runner in self.runners().items():
            if hasattr(runner, "on_fallback"):
                runner.on_fallback = lambda text, role=role: listener("{} {}".format(role, text))  # type: ignore[attr-defined]

    def detect_arrays(self, frame_bgr: np.ndarray, device: Any = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (N,4) float32, face scores (N,), class probabilities (N,3), landmarks (N,5,2)).
        ``device``: the frame as a CUDA image, for the face detector (:meth:`FaceDetector.detect_arrays`)."""
        bgr = to_bgr(frame_bgr)
        boxes, scores, kps = self.find_faces(bgr, device)
        if bgr is None or len(boxes) == 0:
            return boxes, scores, np.zeros((0, len(CLASSES)), np.float32), kps
        return boxes, scores, self.classifier.classify_boxes(bgr, boxes, self.flip_tta), kps

    def find_faces(self, bgr: Optional[np.ndarray], device: Any = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The faces the classifier is given: (boxes (N,4), scores (N,), landmarks (N,5,2)) of a BGR frame
        (None: an unreadable one, no faces), those smaller than ``min_face`` dropped."""
        if bgr is None:
            return self.faces.detect_arrays(np.zeros((0, 0, 3), np.uint8))
        boxes, scores, kps = self.faces.detect_arrays(bgr, device)
        if self.min_face > 0 and len(boxes):
            keep = (boxes[:, 3] - boxes[:, 1]) >= self.min_face
            boxes, scores, kps = boxes[keep], scores[keep], kps[keep]
        return boxes, scores, kps

    def detect(self, frame_bgr: np.ndarray, device: Any = None) -> List[Detection]:
        """Faces with their calibrated classification (``detect_arrays`` gives the model's own probabilities)."""
        boxes, scores, probs, kps = self.detect_arrays(frame_bgr, device)
        if len(boxes) == 0:
            return []
        calibration = self.classifier.calibration
        probs = calibration.apply(probs)
        ib = np.round(boxes).astype(np.int64)
        dets = [
            Detection(
                box=(int(b[0]), int(b[1]), int(b[2]), int(b[3])),
                mask=cls,
                confidence=float(p.max()),
                face_score=float(s),
                landmarks=tuple((float(x), float(y)) for x, y in k),
                probs=tuple(float(v) for v in p),
                sure=sure,
            )
            for b, (cls, sure), p, s, k in zip(ib, calibration.readings(probs), probs, scores, kps)
        ]
        dets.sort(key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        return dets
