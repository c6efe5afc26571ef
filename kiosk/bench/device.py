"""``dabai-kiosk bench device``: the GPU path on a machine with a GPU, checked against ONNX Runtime and timed.

For each model the kiosk runs (the face detector and the mask classifier of the config, as ``engine build``
lists them, or the ONNX files given), and for each precision (FP16, FP32): the TensorRT engine is built (or
taken from the cache), run on real inputs (the demo's rendered 640x480 frames and the photos of assets/demo,
prepared as the kiosk prepares them: the detector's input at detect_scale 0.5 and 1.0, face crops in batches
of 1, 8 and 40, the last above the profile's maximum so it runs in chunks) and compared with ONNX Runtime on
the CPU (the reference) on the same inputs: |tensorrt - onnxruntime| <= atol + rtol * |onnxruntime|, with
atol = rtol = 1e-2 for FP16 and 1e-3 for FP32. Both are timed (median and p95 of ``runs`` runs after
``warmup``), and so is the whole vision step (pre-processing, both models, post-processing) on each backend,
and with the detector's input made on the GPU from a device copy of the frame (the CUDA preprocessing kernel)
where it compiles; that input is compared with the CPU's too (at most 1 grey level apart).

Exit status: 0 when every comparison passes, 1 when one fails, 2 when there is no TensorRT + CUDA here
(the reason is printed), as ``dabai-kiosk engine build``.
"""

from __future__ import annotations

import functools
import glob
import os
import platform
import time
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.bench import timing_summary

NO_DEVICE_EXIT = 2
TOLERANCES = {"fp16": {"atol": 1e-2, "rtol": 1e-2}, "fp32": {"atol": 1e-3, "rtol": 1e-3}}
BATCHES = (1, 8, 40)  # face crops per classifier run; 40 is above the profile's 32: run in chunks
SCALES = (0.5, 1.0)  # the detector's input: the kiosk's detect_scale, and the frame's own size
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NoDevice(Exception):
    """TensorRT or a CUDA GPU is not usable here; the message says why."""


def bench_frames(n: int = 12) -> List[np.ndarray]:
    """640x480 BGR frames: the demo's rendered scenes and assets/demo's photos on a grey 640x480 canvas."""
    import cv2

    from kiosk.bench.vision import demo_frames

    frames = list(demo_frames(n))
    for path in sorted(glob.glob(os.path.join(REPO, "assets", "demo", "*.png"))):
        img = cv2.imread(path)
        if img is None:
            continue
        canvas = np.full((480, 640, 3), 127, np.uint8)
        h, w = min(img.shape[0], 480), min(img.shape[1], 640)
        y, x = (480 - h) // 2, (640 - w) // 2
        canvas[y:y + h, x:x + w] = img[:h, :w]
        frames.append(canvas)
    return frames


def compare(trt_out: Dict[str, np.ndarray], ref_out: Dict[str, np.ndarray], atol: float, rtol: float) -> Dict[str, Any]:
    """Per output: max abs diff and whether |a - b| <= atol + rtol |b| everywhere (shapes must agree)."""
    result = {}  # type: Dict[str, Any]
    for name, ref in ref_out.items():
        got = trt_out.get(name)
        if got is None or np.shape(got) != np.shape(ref):
            result[name] = {"max_abs_diff": None, "pass": False,
                            "problem": "shape {} vs {}".format(None if got is None else list(np.shape(got)), list(np.shape(ref)))}
            continue
        a, b = np.asarray(got, np.float64), np.asarray(ref, np.float64)
        diff = np.abs(a - b)
        ok = bool(np.all(diff <= atol + rtol * np.abs(b))) if diff.size else True
        result[name] = {"max_abs_diff": float(diff.max()) if diff.size else 0.0, "pass": ok}
    return result


def _merge(into: Dict[str, Any], more: Dict[str, Any]) -> None:
    for name, r in more.items():
        old = into.get(name)
        if old is None:
            into[name] = dict(r)
            continue
        old["pass"] = old["pass"] and r["pass"]
        if r["max_abs_diff"] is None or old["max_abs_diff"] is None:
            old["max_abs_diff"] = None
        else:
            old["max_abs_diff"] = max(old["max_abs_diff"], r["max_abs_diff"])
        if "problem" in r:
            old["problem"] = r["problem"]


def _time(fn: Callable[[], Any], runs: int, warmup: int) -> Dict[str, Any]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    s = timing_summary(times, 3)
    return {"p50_ms": s["p50"], "p95_ms": s["p95"], "runs": s["n"]}


def _kind(runner: Any) -> str:
    outputs = runner.output_names
    if "cls_8" in outputs:
        return "face detector"
    shape = runner.input_shape(runner.input_names[0]) if len(runner.input_names) == 1 else []
    if "probs" in outputs or (len(shape) == 4 and len(outputs) == 1):
        return "mask classifier"
    return "other"


def _face_inputs(path: str, ref: Any, frames: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
    from kiosk.vision.faces import FaceDetector

    feeds = []
    for scale in SCALES:
        det = FaceDetector(path, runner=ref, scale=scale, min_long_side=int(round(640 * scale)))
        for frame in frames:
            feeds.append({det.input_name: np.array(det._prepare(frame)[0])})
    return feeds


def _crop_inputs(face_path: Optional[str], ref: Any, frames: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
    """Face crops of the frames (found by the face detector on ONNX Runtime; the frame's centre without one),
    prepared as the classifier's input, in batches of :data:`BATCHES`."""
    from kiosk.inference import load_model
    from kiosk.vision.faces import FaceDetector
    from kiosk.vision.mask import crop_boxes, to_model_input

    name = ref.input_names[0]
    shape = ref.input_shape(name)
    size = int(shape[2]) if isinstance(shape[2], int) else 64
    det = None
    if face_path and os.path.isfile(face_path):
        det = FaceDetector(face_path, runner=load_model(face_path, "onnxruntime", use_gpu=False), scale=0.5,
                           min_long_side=320)
    crops = []
    for frame in frames:
        boxes = det.detect_arrays(frame)[0] if det is not None else np.zeros((0, 4), np.float32)
        if not len(boxes):
            h, w = frame.shape[:2]
            boxes = np.array([[w * 0.35, h * 0.25, w * 0.65, h * 0.7]], np.float32)
        crops.append(to_model_input(crop_boxes(frame, boxes, size)))
    pool = np.concatenate(crops)
    return [{name: np.ascontiguousarray(np.resize(pool, (n,) + pool.shape[1:]))} for n in BATCHES]


def _other_inputs(ref: Any, seed: int = 0) -> List[Dict[str, np.ndarray]]:
    """Random inputs at the profile's optimum shapes (an ONNX model of unknown kind)."""
    from kiosk.inference.tensorrt_backend import DEFAULT_PROFILE, profile_shapes

    rng = np.random.default_rng(seed)
    feeds = {}
    for name in ref.input_names:
        shape = [d if isinstance(d, int) else -1 for d in ref.input_shape(name)]
        opt = profile_shapes(shape, DEFAULT_PROFILE)[1]
        feeds[name] = rng.standard_normal(opt).astype(np.float32)
    return [feeds]


def _versions() -> Dict[str, Optional[str]]:
    import onnxruntime

    out = {"python": platform.python_version(), "numpy": np.__version__, "onnxruntime": onnxruntime.__version__}
    try:
        import tensorrt

        out["tensorrt"] = tensorrt.__version__
    except Exception as exc:  # reported, not fatal: available() said it imports
        out["tensorrt"] = "({}: {})".format(type(exc).__name__, exc)
    from kiosk.inference.tensorrt_backend import _cuda_modules

    rt, drv = _cuda_modules()
    out["cuda_bindings"] = getattr(rt or drv, "__name__", "?")
    return out


def _device_copy(cuda: Any, frame: np.ndarray) -> Tuple[Any, Any]:
    """The frame in GPU memory, shaped like a jetson-utils cudaImage (ptr, width, height, format), and its owner."""
    host, owner, dptr = cuda.alloc(frame.nbytes)
    host[:frame.nbytes] = np.ascontiguousarray(frame).reshape(-1)
    cuda.to_device(dptr, host, frame.nbytes)
    cuda.sync()
    image = types.SimpleNamespace(ptr=dptr, width=frame.shape[1], height=frame.shape[0], channels=3, format="bgr8")
    return image, (host, owner)


def _vision_step(face: str, mask: str, trt_runners: Dict[str, Any], frames: Sequence[np.ndarray], runs: int,
                 warmup: int) -> Dict[str, Any]:
    """The vision step (MaskDetector.detect, as the kiosk runs it at detect_scale 0.5) per backend, the faces each
    finds, and the detector's input made on the GPU from a device copy of each frame."""
    from kiosk.inference import load_model
    from kiosk.vision.faces import box_correction_for
    from kiosk.vision.mask import MaskDetector

    det = MaskDetector.for_mode(face, mask, "live", "onnxruntime", scale=0.5, min_long_side=320,
                                box_correction=box_correction_for(face))
    # the reference on the CPU (an onnxruntime-gpu's TensorRT provider would build engines of its own for minutes)
    ort_face, ort_mask = load_model(face, "onnxruntime", use_gpu=False), load_model(mask, "onnxruntime", use_gpu=False)
    det.faces.runner, det.classifier.runner = ort_face, ort_mask
    result = {}  # type: Dict[str, Any]
    found = {}  # type: Dict[str, List[int]]

    def step_over(frames_: Sequence[Any], call: Callable[[Any], Any]) -> Callable[[], None]:
        state = {"i": 0}

        def step() -> None:
            call(frames_[state["i"] % len(frames_)])
            state["i"] += 1
        return step

    result["onnxruntime"] = _time(step_over(frames, det.detect), runs, warmup)
    result["onnxruntime"]["providers"] = list(getattr(ort_face, "providers", []))
    found["onnxruntime"] = [len(det.detect(f)) for f in frames]
    det.faces.runner, det.classifier.runner = trt_runners["face"], trt_runners["mask"]
    result["tensorrt"] = _time(step_over(frames, det.detect), runs, warmup)
    found["tensorrt"] = [len(det.detect(f)) for f in frames]
    result["faces_found_same"] = sum(a == b for a, b in zip(found["onnxruntime"], found["tensorrt"]))
    result["frames"] = len(frames)
    result["device_input"] = _device_input(det, trt_runners["face"], frames, runs, warmup, step_over)
    det.faces.runner, det.classifier.runner = ort_face, ort_mask
    return result


def _device_input(det: Any, runner: Any, frames: Sequence[np.ndarray], runs: int, warmup: int,
                  step_over: Callable[..., Callable[[], None]]) -> Dict[str, Any]:
    """The CUDA preprocessing kernel on this GPU: its input vs the CPU's (max abs diff, grey levels), and the
    vision step timed with it."""
    cuda = runner._cuda
    if runner._preprocessor() is None:
        return {"available": False, "why": runner._pre_failed}
    with cuda:  # pycuda: our context current around each CUDA call made here
        copies = [_device_copy(cuda, f) for f in frames]
    worst = 0.0
    for frame, (image, _owner) in zip(frames, copies):
        h, w = frame.shape[:2]
        s, rw, rh, pw, ph = det.faces._geometry(w, h)
        runner.run_device_image(det.faces.input_name, image, (rw, rh), (pw, ph), not s > 1)
        host, dptr = runner._buf[det.faces.input_name][0], runner._buf[det.faces.input_name][2]
        n = 3 * ph * pw * 4
        with cuda:
            cuda.to_host(host, dptr, n)
            cuda.sync()
        gpu_blob = host[:n].view(np.float32).reshape(1, 3, ph, pw).copy()
        cpu_blob = np.array(det.faces._prepare(frame)[0])
        worst = max(worst, float(np.abs(gpu_blob - cpu_blob).max()))
    pairs = list(zip(frames, [c[0] for c in copies]))
    timing = _time(step_over(pairs, lambda p: det.detect(p[0], device=p[1])), runs, warmup)
    with cuda:
        for _image, (_host, owner) in copies:
            cuda.free(owner)
    return {"available": True, "max_abs_diff_vs_cpu": worst, "pass": worst <= 1.0, "vision_step": timing}


def run_device_bench(models: Optional[Sequence[str]] = None, cache_dir: Optional[str] = None,
                     precisions: Sequence[str] = ("fp16", "fp32"), runs: int = 50, warmup: int = 5,
                     frames: Optional[List[np.ndarray]] = None,
                     echo: Callable[[str], None] = lambda line: None) -> Dict[str, Any]:
    """The report (see the module's docstring); raises :class:`NoDevice` without TensorRT + a CUDA GPU."""
    from kiosk.inference import load_model
    from kiosk.inference import tensorrt_backend as trtb

    if not trtb.available():
        raise NoDevice(trtb.UNAVAILABLE_REASON or "TensorRT is unavailable")
    if not models:
        from kiosk.cli.engine import default_models

        models = default_models()
    missing = [m for m in models if not os.path.isfile(m)]
    if missing:
        raise FileNotFoundError("not found: {} (install the face model with `dabai-kiosk models fetch`)".format(
            ", ".join(missing)))
    frames = frames if frames is not None else bench_frames()
    cuda = trtb._Cuda()
    report = {"gpu": cuda.name, "integrated_gpu": bool(cuda.mapped), "versions": _versions(),
              "tolerances": {p: dict(TOLERANCES[p], rule="|trt - ort| <= atol + rtol * |ort|") for p in precisions},
              "reference": "onnxruntime, CPUExecutionProvider", "frames": len(frames), "models": []}  # type: Dict[str, Any]
    refs = {m: load_model(m, "onnxruntime", use_gpu=False) for m in models}
    kinds = {m: _kind(r) for m, r in refs.items()}
    face = next((m for m in models if kinds[m] == "face detector"), None)
    mask = next((m for m in models if kinds[m] == "mask classifier"), None)
    step_runners = {}  # type: Dict[str, Any]
    for model in models:
        ref = refs[model]
        if kinds[model] == "face detector":
            feeds = _face_inputs(model, ref, frames)
        elif kinds[model] == "mask classifier":
            feeds = _crop_inputs(face, ref, frames)
        else:
            feeds = _other_inputs(ref)
        expected = [ref.run(f) for f in feeds]
        for precision in precisions:
            echo("{}: {} engine".format(os.path.basename(model), precision))
            entry = {"model": model, "kind": kinds[model], "precision": precision, "inputs": len(feeds)}  # type: Dict[str, Any]
            report["models"].append(entry)
            t0 = time.perf_counter()
            try:
                # the kiosk's engines are FP16: FP32 ones are kept apart, or each would evict the other as stale
                where = cache_dir if precision == "fp16" or not cache_dir else os.path.join(cache_dir, "bench-fp32")
                runner = trtb.TensorRTRunner(model, cache_dir=where, fp16=precision == "fp16")
            except Exception as exc:  # the failure is the finding: reported, and the next model is tried
                entry.update(engine={"problem": "{}: {}".format(type(exc).__name__, exc)}, max_abs_diff={}, ok=False)
                continue
            entry["engine"] = {"status": runner.info.status, "path": runner.info.path,
                               "seconds": round(time.perf_counter() - t0, 2), "max_batch": runner.max_batch}
            entry["zero_copy"] = bool(runner.zero_copy)
            outputs = {}  # type: Dict[str, Any]
            try:
                for feed, want in zip(feeds, expected):
                    _merge(outputs, compare(runner.run(feed), want, **TOLERANCES[precision]))
            except Exception as exc:
                entry.update(max_abs_diff={}, ok=False, problem="{}: {}".format(type(exc).__name__, exc))
                continue
            entry["max_abs_diff"] = {k: v["max_abs_diff"] for k, v in outputs.items()}
            entry["failed_outputs"] = sorted(k for k, v in outputs.items() if not v["pass"])
            entry["ok"] = not entry["failed_outputs"]
            timed = feeds[0]
            entry["timing"] = {"input": {k: list(v.shape) for k, v in timed.items()},
                               "tensorrt": _time(functools.partial(runner.run, timed), runs, warmup),
                               "onnxruntime": _time(functools.partial(ref.run, timed), runs, warmup)}
            if precision == precisions[0] and model in (face, mask):
                step_runners["face" if model == face else "mask"] = runner
    if face and mask and len(step_runners) == 2:
        echo("vision step")
        report["vision_step"] = _vision_step(face, mask, step_runners, frames, runs, warmup)
        report["vision_step"]["precision"] = precisions[0]
    device = (report.get("vision_step") or {}).get("device_input") or {}
    report["ok"] = all(m.get("ok") for m in report["models"]) and device.get("pass", True)
    return report
