"""Face detection with YuNet (Apache-2.0, ShiqiYu/libfacedetection.train) through a :class:`Runner`.

The network's raw outputs (``cls_*``, ``obj_*``, ``bbox_*``, ``kps_*`` for strides 8/16/32) are
decoded the way OpenCV's ``FaceDetectorYN`` decodes them, fully vectorized in numpy, then
non-maximum suppression. Boxes are finally corrected, because YuNet's box convention (from the
top of the forehead) differs from the dataset's (eyebrows to chin): by default with a learned
linear regression from the YuNet box, its 5 landmarks and score to the dataset's box edges
(:data:`DEFAULT_BOX_REGRESSION`), or with a constant offset relative to box size. Both were
fitted on the training split only (see ``engines/MODEL_CARD.md`` and ``kiosk.train.detector_offset``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from kiosk.inference import ModelError, Runner, describe_io, input_array, load_model
from kiosk.vision.image import to_bgr

STRIDES = (8, 16, 32)
# The network's outputs: for each stride, these four, with this many values per anchor (the last axis).
OUTPUTS = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}

# The variant chosen by measurement (kiosk/train/detector_offset.py, numbers in engines/MODEL_CARD.md):
# yunet_n_dynamic at the frame's own size (small frames upscaled to a 640 px long side),
# score threshold 0.5: ~8 ms per 640x480 frame on 2 CPU cores, test recall@0.5 0.86.
DEFAULT_MODEL_NAME = "yunet_n_dynamic"
DEFAULT_SCORE_THRESHOLD = 0.5
# Offsets of the dataset's box edges relative to the YuNet box, as fractions of its width/height
# (x1, y1, x2, y2): median over YuNet boxes matched to GT boxes of the TRAIN split (IoU >= 0.3).
DEFAULT_BOX_CORRECTION = (-0.0051, 0.1809, 0.0413, 0.0811)
# Learned box correction (``box_correction="learned"``, the default): the offsets of the dataset's
# (x1, y1, x2, y2) from the YuNet box, as fractions of its width/height, are ``features @ W.T`` with
# features = [1, landmark x (5) and y (5) relative to the box (0..1), score, ln(clip(h, 8, 256)) / 5,
# w / h]. Ridge least squares (lambda 0.01) over 4181 one-to-one YuNet/GT pairs (IoU >= 0.3) of the
# TRAIN split, YuNet at 640 px (score >= 0.3) and 800 px (score >= 0.1) long side, fitted by
# ``kiosk.train.detector_offset --fit yunet_n_dynamic:640:0.3,yunet_n_dynamic:800:0.1``.
DEFAULT_BOX_REGRESSION = (
    (0.0151, -0.4627, -0.3502, 0.3994, 0.3956, -0.0324, 0.1127, -0.0757, -0.0241, -0.7293, 0.7087, 0.0462, 0.0756, -0.0355),
    (0.0119, -0.0147, 0.2024, -0.0953, 0.1563, -0.1906, 0.5864, -0.2106, 0.1876, -0.3287, 0.1689, 0.0036, 0.0787, -0.0546),
    (0.1694, 0.0176, -0.1985, 0.168, -0.2139, 0.2393, 0.3832, -0.923, 0.4432, -0.4844, 0.5152, -0.0763, -0.1901, -0.0407),
    (-0.1338, 0.1015, -0.0341, 0.013, 0.1397, -0.219, 0.115, -0.6127, 0.1582, -0.4252, 0.8284, -0.0689, 0.0851, 0.1351),
)
MAX_OFFSET = 0.5  # learned offsets are clipped to +-0.5 box sizes (guards extrapolation)

# The coarse second pass (``FaceDetector(coarse_pass=True)``). YuNet sees a face whole only while it is at
# most a few hundred pixels tall in the network's input: on 233 portraits whose face fills 80-100 % of a
# 1024x1024 photo (``tools/close_faces.py``; first pass alone), the face is found in 0 with the photo at 1024 px (it
# comes out as fragments: an eye, a mouth), 124 at 512, 204 at 384, 220 at 320 and 226 at 256. The coarse
# pass runs the network once more on the frame shrunk to a COARSE_SIDE long side inside a border of
# COARSE_PAD of that side (so a face cut by the frame's edges still has margins around it for the anchors).
COARSE_SIDE = 192
COARSE_PAD = 0.25
COARSE_FILL = 127.0  # the border's grey level
# It runs when the first pass found nothing, or when the first pass's input was so large that a face filling
# the frame would be taller than this in it (its short side, px): there its boxes may be fragments of one big
# face. The kiosk's live path (a 640x480 camera at detect_scale 0.5: a 320x240 input) never passes this.
MAX_WHOLE_FACE = 384
# Coarse faces smaller than this fraction of the frame's short side are left to the first pass, which sees
# them sharper; first-pass boxes whose centre lies in a coarse face at most FRAGMENT_AREA of its area are
# taken as its fragments and dropped.
COARSE_MIN_FACE = 0.25
FRAGMENT_AREA = 0.5


def box_features(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, 14) features of raw YuNet detections for the learned box correction."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    k = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    w = np.maximum(b[:, 2] - b[:, 0], 1.0)
    h = np.maximum(b[:, 3] - b[:, 1], 1.0)
    kx = (k[:, :, 0] - b[:, None, 0]) / w[:, None]
    ky = (k[:, :, 1] - b[:, None, 1]) / h[:, None]
    extra = np.stack([np.asarray(scores, np.float64).reshape(-1), np.log(np.clip(h, 8, 256)) / 5, w / h], 1)
    return np.concatenate([np.ones((len(b), 1)), kx, ky, extra], 1)


#: Named box corrections: "learned" (:data:`DEFAULT_BOX_REGRESSION`, for the original YuNet),
#: "constant" (:data:`DEFAULT_BOX_CORRECTION`), "identity" (boxes unchanged: for a detector that
#: already emits the dataset's convention, e.g. the fine-tuned ``engines/face_detector.onnx``).
BOX_CORRECTIONS = ("learned", "constant", "identity")
_BAD_CORRECTION = "box_correction must be 'learned', 'constant', 'identity', 4 fractions or a (4, 14) matrix"


def _named_correction(name: str) -> Sequence[object]:
    if name == "learned":
        return DEFAULT_BOX_REGRESSION
    if name == "constant":
        return DEFAULT_BOX_CORRECTION
    if name == "identity":
        return (0.0, 0.0, 0.0, 0.0)
    raise ValueError(_BAD_CORRECTION + " (got {!r})".format(name))


def parse_box_correction(text: str) -> Union[str, Tuple[float, ...]]:
    """A command-line / JSON value -> a ``box_correction``: a name of :data:`BOX_CORRECTIONS`, or
    4 comma-separated fractions ("-0.005,0.18,0.04,0.08")."""
    t = str(text).strip()
    if t in BOX_CORRECTIONS:
        return t
    try:
        v = tuple(float(x) for x in t.split(","))
    except ValueError:
        raise ValueError(_BAD_CORRECTION + " (got {!r})".format(text)) from None
    if len(v) != 4:
        raise ValueError(_BAD_CORRECTION + " (got {!r})".format(text))
    return v


def sidecar_path(model_path: "Union[str, os.PathLike]") -> str:
    """``engines/face_detector.onnx`` -> ``engines/face_detector.json`` (the model's settings)."""
    return os.path.splitext(str(model_path))[0] + ".json"


def read_sidecar(model_path: "Union[str, os.PathLike]") -> Dict[str, Any]:
    """The JSON settings next to a model file (:func:`sidecar_path`), ``{}`` when there are none. A
    sidecar that cannot be read is an error, not silently ignored: the wrong box correction costs
    several points of mAP."""
    side = sidecar_path(model_path)
    if not os.path.isfile(side):
        return {}
    try:
        with open(side, "r", encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError("{}: cannot read the face model's settings: {}".format(side, exc)) from None
    if not isinstance(meta, dict):
        raise ValueError("{}: expected a JSON object".format(side))
    return meta


def box_correction_for(model_path: "Union[str, os.PathLike]", default: str = "learned") -> Union[str, Tuple[float, ...]]:
    """The box correction that goes with a face model: ``box_correction`` of its JSON sidecar
    (``engines/face_detector.json``: ``{"box_correction": "identity"}``) when there is one, else
    ``default`` (the learned correction, fitted for the original YuNet files of the catalogue)."""
    meta = read_sidecar(model_path)
    if "box_correction" not in meta:
        return default
    value = meta["box_correction"]
    try:
        if isinstance(value, (list, tuple)):
            return parse_box_correction(",".join(str(float(v)) for v in value))
        return parse_box_correction(str(value))
    except (TypeError, ValueError) as exc:
        raise ValueError("{}: {}".format(sidecar_path(model_path), exc)) from None


def correct_boxes(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray,
                  correction: Union[str, Sequence[float], np.ndarray] = "learned") -> np.ndarray:
    """Raw YuNet boxes (N,4) -> the dataset's box convention. ``correction``: a name of
    :data:`BOX_CORRECTIONS` (``"learned"``: the regression :data:`DEFAULT_BOX_REGRESSION`), a
    (4, 14) matrix, or 4 constant fractions."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if isinstance(correction, str):
        correction = _named_correction(correction)
    c = np.asarray(correction, np.float64)
    if c.size == 4:
        off = np.tile(c.reshape(1, 4), (len(b), 1))
    else:
        off = np.clip(box_features(b, scores, landmarks) @ c.reshape(4, -1).T, -MAX_OFFSET, MAX_OFFSET)
    bw = b[:, 2] - b[:, 0]
    bh = b[:, 3] - b[:, 1]
    return (b + off * np.stack([bw, bh, bw, bh], 1)).astype(np.float32)


@dataclass(frozen=True)
class Face:
    box: Tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels (corrected, clipped to the frame)
    score: float
    landmarks: Tuple[Tuple[float, float], ...]  # right eye, left eye, nose tip, right / left mouth corner


def check_face_model(runner: Runner, path: str) -> None:
    """Raise :class:`ModelError` (one line: the file, what was expected, what was found) unless the model
    takes one image ``[N,3,H,W]`` and gives YuNet's ``cls/obj/bbox/kps_8/16/32`` outputs. Checked when it is
    loaded, so that a wrong model (the mask classifier, say) is refused at start, not on every frame."""
    expected = ("a YuNet face detector: one input [N,3,H,W] (H, W multiples of 32 when fixed) and outputs "
                "cls/obj/bbox/kps_8/16/32 with 1/1/4/10 values per anchor")
    problem = None  # type: Optional[str]
    inputs = runner.input_names
    shape = runner.input_shape(inputs[0]) if len(inputs) == 1 else []
    outputs = runner.output_names
    if len(inputs) != 1 or len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        problem = "input"
    elif any(isinstance(d, int) and d % 32 for d in shape[2:]):
        problem = "input size"
    else:
        wanted = ["{}_{}".format(k, st) for k in OUTPUTS for st in STRIDES]
        if any(n not in outputs for n in wanted):
            problem = "outputs"
        for name in wanted:
            out = runner.declared_output_shape(name) if problem is None else None
            if out and (len(out) != 3 or (isinstance(out[-1], int) and out[-1] != OUTPUTS[name.split("_")[0]])):
                problem = "output {}".format(name)
    if problem is not None:
        hint = " (the mask classifier?)" if outputs == ["probs"] else ""
        raise ModelError(path, "not a face detector (wrong {}): expected {}; found {}{}".format(
            problem, expected, describe_io(runner), hint))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, top_k: int = 5000) -> np.ndarray:
    """Greedy NMS; returns kept indices sorted by descending score."""
    order = np.argsort(-scores)[:top_k]
    if len(order) == 0:
        return order
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


class FaceDetector:
    """YuNet face detector.

    ``scale``: for dynamic-size models, the factor applied to the frame before the network;
    a frame whose longer side would stay under ``min_long_side`` is upscaled to it (small
    images hold small faces), and ``max_side`` caps the network input's longer side.
    A 640x480 camera frame runs at its own size by default. Fixed-size models (e.g. 640x640)
    letterbox the frame into their input instead.
    ``box_correction``: ``"learned"`` (default), ``"constant"``, ``"identity"`` (raw boxes), 4
    constant fractions of the box size added to (x1, y1, x2, y2) (e.g. :data:`DEFAULT_BOX_CORRECTION`;
    ``(0, 0, 0, 0)`` = ``"identity"``), or a (4, 14) regression matrix (see :func:`correct_boxes`).
    Which one goes with a model file: :func:`box_correction_for`.
    ``coarse_pass``: also find a face that fills the frame, with a second pass on a shrunk, bordered copy of
    the frame when the first finds nothing or ran at a size where such a face is seen in fragments
    (:data:`COARSE_SIDE`, :data:`MAX_WHOLE_FACE`); frames whose faces the first pass finds at a kiosk's
    camera size cost the same as without it.
    ``search_scales``: when the passes above find nothing, the first pass again with the frame at each of these
    scales in turn (skipped where it would repeat the first), until a face is found; frames with a face never
    pay for it.
    """

    def __init__(
        self,
        model_path: str,
        backend: str = "auto",
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        scale: float = 1.0,
        min_long_side: int = 640,
        max_side: int = 1280,
        box_correction: Union[str, Sequence[float]] = "learned",
        runner: Optional[Runner] = None,
        coarse_pass: bool = False,
        search_scales: Sequence[float] = (),
    ) -> None:
        self.runner = runner if runner is not None else load_model(model_path, backend)
        self.model_path = str(model_path)
        check_face_model(self.runner, self.model_path)
        self.input_name = self.runner.input_names[0]
        shape = self.runner.input_shape(self.input_name)
        h, w = shape[2], shape[3]
        self.fixed_size = (int(w), int(h)) if isinstance(w, int) and isinstance(h, int) else None
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.scale = float(scale)
        self.min_long_side = int(min_long_side)
        self.max_side = int(max_side)
        if isinstance(box_correction, str):
            correct_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)), box_correction)  # validates
            self.box_correction = box_correction  # type: Union[str, np.ndarray]
        else:
            c = np.asarray(box_correction, np.float64)
            if c.size not in (4, 4 * len(DEFAULT_BOX_REGRESSION[0])):
                raise ValueError(_BAD_CORRECTION)
            self.box_correction = c
        self.coarse_pass = bool(coarse_pass)
        self.search_scales = tuple(float(x) for x in search_scales)
        self._grid_cache = {}  # type: dict

    # -- preprocessing ---------------------------------------------------------------------
    def _geometry(self, w: int, h: int, scale: Optional[float] = None) -> Tuple[float, int, int, int, int]:
        """(scale, resized w, h, padded w, h) of the network input for a w x h frame (at ``scale``, default
        the detector's own)."""
        if self.fixed_size is not None:
            tw, th = self.fixed_size
            s = min(tw / w, th / h)
            pw, ph = tw, th
        else:
            s = max(self.scale if scale is None else scale, self.min_long_side / float(max(w, h)))
            if max(w, h) * s > self.max_side:
                s = self.max_side / float(max(w, h))
            pw = max(32, int(np.ceil(w * s / 32.0)) * 32)
            ph = max(32, int(np.ceil(h * s / 32.0)) * 32)
        rw, rh = max(1, min(pw, int(round(w * s)))), max(1, min(ph, int(round(h * s))))
        return s, rw, rh, pw, ph

    def _prepare(self, bgr: np.ndarray, scale: Optional[float] = None) -> Tuple[np.ndarray, float, float]:
        h, w = bgr.shape[:2]
        s, rw, rh, pw, ph = self._geometry(w, h, scale)
        if (rw, rh) != (w, h):
            interp = cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA
            img = cv2.resize(bgr, (rw, rh), interpolation=interp)
        else:
            img = bgr
        # built in the runner's own input buffer where it has one (TensorRT: pinned or mapped memory, no copy)
        blob = input_array(self.runner, self.input_name, (1, 3, ph, pw), np.float32)
        blob[0, :, :rh, :rw] = img.transpose(2, 0, 1)
        if rh < ph:
            blob[0, :, rh:, :] = 0
        if rw < pw:
            blob[0, :, :rh, rw:] = 0
        # the frame maps to the network input by (x * sx, y * sy)
        return blob, rw / float(w), rh / float(h)

    def _grid(self, pw: int, ph: int, stride: int) -> Tuple[np.ndarray, np.ndarray]:
        key = (pw, ph, stride)
        g = self._grid_cache.get(key)
        if g is None:
            cols, rows = pw // stride, ph // stride
            yy, xx = np.mgrid[0:rows, 0:cols]
            g = (xx.reshape(-1).astype(np.float32), yy.reshape(-1).astype(np.float32))
            self._grid_cache[key] = g
        return g

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, blob: np.ndarray, out: Optional[Dict[str, np.ndarray]] = None,
                padded: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the network on ``blob`` (or decode its outputs ``out`` for an input of ``padded`` (w, h)): (boxes
        (N,4), scores (N,), landmarks (N,5,2)) above the score threshold, in the input's pixels, before NMS."""
        if out is None:
            ph, pw = blob.shape[2], blob.shape[3]
            out = self.runner.run({self.input_name: blob})
        else:
            pw, ph = padded  # type: ignore[misc]
        all_boxes, all_scores, all_kps = [], [], []
        for stride in STRIDES:
            cls = out["cls_%d" % stride].reshape(-1)
            obj = out["obj_%d" % stride].reshape(-1)
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            idx = np.nonzero(score >= self.score_threshold)[0]
            if idx.size == 0:
                continue
            gx, gy = self._grid(pw, ph, stride)
            gx, gy = gx[idx], gy[idx]
            bb = out["bbox_%d" % stride].reshape(-1, 4)[idx]
            kp = out["kps_%d" % stride].reshape(-1, 10)[idx]
            cx = (gx + bb[:, 0]) * stride
            cy = (gy + bb[:, 1]) * stride
            bw = np.exp(bb[:, 2]) * stride
            bh = np.exp(bb[:, 3]) * stride
            all_boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
            kx = (kp[:, 0::2] + gx[:, None]) * stride
            ky = (kp[:, 1::2] + gy[:, None]) * stride
            all_kps.append(np.stack([kx, ky], 2))
            all_scores.append(score[idx])
        if not all_boxes:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
        return (np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32),
                np.concatenate(all_kps).astype(np.float32))

    def _nms(self, boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        keep = nms(boxes, scores, self.nms_threshold, self.top_k)
        return boxes[keep], scores[keep], kps[keep]

    def _coarse(self, bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The second pass: the frame shrunk to a :data:`COARSE_SIDE` long side, in a grey border of
        :data:`COARSE_PAD` of that side; its faces of at least :data:`COARSE_MIN_FACE` of the frame's short
        side, in frame pixels, after NMS."""
        h, w = bgr.shape[:2]
        side = COARSE_SIDE if self.fixed_size is None else min(COARSE_SIDE, min(self.fixed_size))
        s = side / float(max(h, w))
        rw, rh = max(1, int(round(w * s))), max(1, int(round(h * s)))
        pad = int(round(COARSE_PAD * side))
        if self.fixed_size is not None:  # a fixed-size network: the frame and as much border as fits
            pw, ph = self.fixed_size
            pad = max(0, min(pad, (pw - rw) // 2, (ph - rh) // 2))
        else:
            pw = int(np.ceil((rw + 2 * pad) / 32.0)) * 32
            ph = int(np.ceil((rh + 2 * pad) / 32.0)) * 32
        blob = input_array(self.runner, self.input_name, (1, 3, ph, pw), np.float32)
        blob.fill(COARSE_FILL)
        small = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA)
        blob[0, :, pad:pad + rh, pad:pad + rw] = small[:rh, :rw].transpose(2, 0, 1)
        boxes, scores, kps = self._nms(*self._decode(blob))
        inv = np.array([rw / float(w), rh / float(h)], np.float32)
        boxes = (boxes - pad) / np.tile(inv, 2)
        kps = (kps - pad) / inv
        big = (boxes[:, 3] - boxes[:, 1]) >= COARSE_MIN_FACE * min(h, w)
        return boxes[big], scores[big], kps[big]

    def _first_pass_on_device(self, device: Any, w: int,
                              h: int) -> Optional[Tuple[Dict[str, np.ndarray], int, int, float, float]]:
        """The first pass from a CUDA image (jetson-utils ``cudaImage``, bgr8, the frame's own pixels) when the
        runner can prepare it on the GPU: (outputs, padded w, h, sx, sy); None to prepare it on the CPU."""
        run = getattr(self.runner, "run_device_image", None)
        if run is None or str(getattr(device, "format", "")) != "bgr8":
            return None
        if (int(getattr(device, "width", -1)), int(getattr(device, "height", -1))) != (w, h):
            return None
        s, rw, rh, pw, ph = self._geometry(w, h)
        out = run(self.input_name, device, (rw, rh), (pw, ph), not s > 1)
        if out is None:
            return None
        return out, pw, ph, rw / float(w), rh / float(h)

    def detect_arrays(self, frame: np.ndarray, device: Any = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes float32 (N,4) x1y1x2y2 corrected+clipped, scores (N,), landmarks (N,5,2)) in frame pixels.

        ``device``: the same frame as a CUDA image (a jetson-utils camera's ``Frame.device``); a TensorRT runner
        then makes the network's input from it on the GPU. Anything else is prepared on the CPU."""
        empty = (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))
        bgr = to_bgr(frame)
        if bgr is None:
            return empty
        h, w = bgr.shape[:2]
        on_device = self._first_pass_on_device(device, w, h) if device is not None else None
        if on_device is not None:
            out, pw, ph, sx, sy = on_device
            boxes, scores, kps = self._to_frame(self._decode(np.empty(0), out, (pw, ph)), sx, sy)
        else:
            (boxes, scores, kps), sx, sy = self._first_pass(bgr)
        if self.coarse_pass and (not len(boxes) or min(h * sy, w * sx) > MAX_WHOLE_FACE):
            boxes, scores, kps = self._merge_coarse((boxes, scores, kps), self._coarse(bgr))
        first_scale = self._geometry(w, h)[0]
        for scale in self.search_scales:  # nothing found yet: look again with the frame at another size
            if len(boxes):
                break
            if self.fixed_size is None and self._geometry(w, h, scale)[0] != first_scale:
                boxes, scores, kps = self._first_pass(bgr, scale)[0]
        if not len(boxes):
            return empty
        boxes = correct_boxes(boxes, scores, kps, self.box_correction)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        ok = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        return boxes[ok], scores[ok], kps[ok]

    def _first_pass(self, bgr: np.ndarray, scale: Optional[float] = None
                    ) -> Tuple[Tuple[np.ndarray, np.ndarray, np.ndarray], float, float]:
        """((boxes, scores, landmarks) in frame pixels after NMS, sx, sy) of the network run on the frame at
        ``scale`` (default the detector's own; the search passes use others)."""
        blob, sx, sy = self._prepare(bgr, scale)
        return self._to_frame(self._decode(blob), sx, sy), sx, sy

    def _to_frame(self, found: Tuple[np.ndarray, np.ndarray, np.ndarray], sx: float,
                  sy: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes, scores, kps = found
        inv = np.array([1.0 / sx, 1.0 / sy], np.float32)
        return self._nms(boxes * np.tile(inv, 2), scores, kps * inv)

    def _merge_coarse(self, first: Tuple[np.ndarray, np.ndarray, np.ndarray],
                      coarse: Tuple[np.ndarray, np.ndarray, np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The faces of both passes: first-pass boxes that are fragments of a coarse face (centre inside it,
        at most :data:`FRAGMENT_AREA` of its area) are dropped, then NMS over the rest."""
        (b1, s1, k1), (b2, s2, k2) = first, coarse
        if not len(b2):
            return first
        if len(b1):
            cx, cy = 0.5 * (b1[:, 0] + b1[:, 2]), 0.5 * (b1[:, 1] + b1[:, 3])
            area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
            area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
            inside = ((cx[:, None] > b2[None, :, 0]) & (cx[:, None] < b2[None, :, 2])
                      & (cy[:, None] > b2[None, :, 1]) & (cy[:, None] < b2[None, :, 3]))
            fragment = (inside & (area1[:, None] <= FRAGMENT_AREA * area2[None, :])).any(1)
            b1, s1, k1 = b1[~fragment], s1[~fragment], k1[~fragment]
        return self._nms(np.concatenate([b1, b2]), np.concatenate([s1, s2]), np.concatenate([k1, k2]))

    def detect(self, frame: np.ndarray, device: Any = None) -> List[Face]:
        boxes, scores, kps = self.detect_arrays(frame, device)
        ib = np.round(boxes).astype(np.int64)
        return [
            Face(
                box=(int(b[0]), int(b[1]), int(b[2]), int(b[3])),
                score=float(sc),
                landmarks=tuple((float(x), float(y)) for x, y in k),
            )
            for b, sc, k in zip(ib, scores, kps)
        ]
