"""The GPU path (issue 11, part 2): TensorRT engages or falls back cleanly; engine cache; per-frame work; bench device.

Runs anywhere: TensorRT and CUDA are the fakes of ``tests/_fake_gpu.py`` (an engine that runs the ONNX model through
ONNX Runtime underneath, memory at real host addresses). What the fakes cannot show -- that real TensorRT and CUDA
behave as their documentation says -- is for ``dabai-kiosk bench device`` on a GPU (``tools/device_check.sh``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from _fake_gpu import FakeKernel, cuda_image, fake_tensorrt, install_cuda

from kiosk.inference import FallbackRunner, ModelError, backend_summary, cuda_preprocess, load_model
from kiosk.inference import tensorrt_backend as trtb
from kiosk.vision.faces import FaceDetector
from kiosk.vision.mask import MaskDetector, to_model_input

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACE = os.path.join(REPO, "engines", "face_detector.onnx")
MASK = os.path.join(REPO, "engines", "mask_classifier.onnx")
pytestmark = pytest.mark.skipif(not (os.path.isfile(FACE) and os.path.isfile(MASK)), reason="engines/*.onnx missing")


@pytest.fixture(scope="module")
def frames():
    from kiosk.bench.device import bench_frames

    return bench_frames(4)[::2]  # a rendered kiosk frame, and photos on a 640x480 canvas


def _gpu(monkeypatch, integrated=False, **trt_kw):
    trt = fake_tensorrt(**trt_kw)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    rt = install_cuda(monkeypatch, integrated)
    monkeypatch.setattr(trtb, "_probe", None)
    monkeypatch.setattr(trtb, "_LOGGER", None)
    return trt, rt


@pytest.fixture
def gpu(monkeypatch):
    return _gpu(monkeypatch)


# -- dtypes: the project's own map, never trt.nptype ---------------------------------------------------
def test_numpy_dtype_map():
    assert trtb.numpy_dtype(trtb_dt("FLOAT")) == np.float32 and trtb.numpy_dtype(trtb_dt("HALF")) == np.float16
    assert trtb.numpy_dtype(trtb_dt("BOOL")) == np.bool_ and trtb.numpy_dtype("DataType.INT64") == np.int64
    for name in ("INT8", "INT32", "UINT8"):
        assert trtb.numpy_dtype(trtb_dt(name)) == np.dtype(name.lower())
    with pytest.raises(TypeError, match="BF16 has no numpy equivalent"):
        trtb.numpy_dtype(trtb_dt("BF16"))
    with pytest.raises(TypeError, match="FP8"):
        trtb.numpy_dtype(trtb_dt("FP8"))
    with pytest.raises(TypeError, match="not known"):
        trtb.numpy_dtype(trtb_dt("COMPLEX"))


def trtb_dt(name):
    from _fake_gpu import DataType

    return DataType(name)


def test_fake_nptype_fails_like_tensorrt_85_on_new_numpy(gpu):
    trt, _rt = gpu
    with pytest.raises(AttributeError, match="np|numpy"):
        trt.nptype(trtb_dt("BOOL"))
    r = load_model(MASK, "tensorrt", cache_dir=None)  # the runner never calls it
    assert r.backend == "tensorrt"


# -- fallback: load time -------------------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [AttributeError("module 'numpy' has no attribute 'bool'"),
                                 RuntimeError("CUDA error cudaErrorMemoryAllocation"),
                                 TypeError("set_input_shape(): incompatible function arguments"), MemoryError()])
def test_any_load_failure_falls_back_to_onnxruntime(monkeypatch, caplog, exc):
    def broken(path, **kw):
        raise exc

    monkeypatch.setattr(trtb, "available", lambda: True)
    monkeypatch.setattr(trtb, "load", broken)
    with caplog.at_level(logging.WARNING, logger="kiosk.inference"):
        r = load_model(MASK)
    assert r.backend == "onnxruntime" and type(exc).__name__ in r.note and r.note.startswith("tensorrt failed to load")
    assert len([rec for rec in caplog.records if rec.name == "kiosk.inference"]) == 1
    assert "tensorrt failed to load" in backend_summary(r)
    with pytest.raises(type(exc)):
        load_model(MASK, backend="tensorrt")  # asked for by name: the error is the caller's


def test_build_failure_inside_tensorrt_falls_back(monkeypatch, tmp_path):
    _gpu(monkeypatch, fail_build=RuntimeError("[TRT] Cuda Runtime (out of memory)"))
    r = load_model(MASK, cache_dir=str(tmp_path))
    assert r.backend == "onnxruntime" and "out of memory" in r.note


# -- fallback: run time ----------------------------------------------------------------------------------------
def test_run_failure_falls_back_once_and_reruns_that_input(gpu, tmp_path, caplog):
    told = []
    r = load_model(MASK, cache_dir=str(tmp_path))
    assert isinstance(r, FallbackRunner) and r.backend == "tensorrt" and r.info.status == "built"
    r.on_fallback = told.append
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    want = load_model(MASK, "onnxruntime").run({"input": x})["probs"]
    np.testing.assert_allclose(r.run({"input": x})["probs"], want, atol=1e-6)
    calls = []

    def broken(stream):
        calls.append(stream)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    r.primary._ctx.execute_async_v3 = broken
    with caplog.at_level(logging.WARNING, logger="kiosk.inference"):
        got = r.run({"input": x})["probs"]
        again = r.run({"input": x[:1]})["probs"]
    np.testing.assert_allclose(got, want, atol=1e-5)  # the same input, re-run on ONNX Runtime
    assert again.shape == (1, 3) and len(calls) == 1 and r.backend == "onnxruntime"
    assert len([rec for rec in caplog.records if rec.name == "kiosk.inference"]) == 1
    assert told == ["mask_classifier.onnx runs on onnxruntime (tensorrt failed while running: RuntimeError: CUDA error: "
                    "an illegal memory access was encountered)"]
    assert "tensorrt failed while running" in backend_summary(r)


def test_when_no_backend_can_take_over_it_is_said_once(gpu, tmp_path, caplog):
    r = load_model(MASK, cache_dir=str(tmp_path))
    r._load_fallback = lambda: (_ for _ in ()).throw(MemoryError("no memory for a session"))

    def broken(stream):
        raise RuntimeError("CUDA error: unspecified launch failure")

    r.primary._ctx.execute_async_v3 = broken
    x = np.zeros((1, 3, 64, 64), np.float32)
    with caplog.at_level(logging.WARNING, logger="kiosk.inference"):
        for _ in range(3):
            with pytest.raises(ModelError, match="no other backend can run it: MemoryError"):
                r.run({"input": x})
    assert len([rec for rec in caplog.records if rec.name == "kiosk.inference"]) == 1


def test_vision_worker_says_degraded_and_keeps_detecting(gpu, tmp_path, frames, monkeypatch):
    from kiosk.vision.capture import Frame
    from kiosk.vision.worker import VisionWorker

    monkeypatch.setenv("DABAI_HOME", str(tmp_path))
    det = MaskDetector.for_mode(FACE, MASK, "live", scale=0.5, min_long_side=320, box_correction="identity")
    assert det.faces.runner.backend == "tensorrt"
    statuses = []
    worker = VisionWorker(None, det, None, lambda code: None, lambda *a: None, on_status=statuses.append)
    assert worker.status == "ok" and statuses == []
    before = det.detect(frames[0])

    def broken(stream):
        raise AttributeError("'IExecutionContext' object has no attribute 'execute_async_v3'")

    det.faces.runner.primary._ctx.execute_async_v3 = broken
    result = worker.process(Frame(frames[0], 0, 0.0, 0.0))
    assert [f.box for f in result.faces] == [d.box for d in before] and len(before)
    assert statuses == [worker.status] and worker.status.startswith("degraded: face detector face_detector.onnx runs "
                                                                    "on onnxruntime (tensorrt failed while running")


def test_worker_reports_a_load_time_fallback(monkeypatch):
    from kiosk.vision.worker import VisionWorker

    monkeypatch.setattr(trtb, "available", lambda: True)
    monkeypatch.setattr(trtb, "load", lambda path, **kw: (_ for _ in ()).throw(RuntimeError("no CUDA context")))
    det = MaskDetector.for_mode(FACE, MASK, "live", box_correction="identity")
    statuses = []
    worker = VisionWorker(None, det, None, lambda code: None, lambda *a: None, on_status=statuses.append)
    assert worker.status.startswith("degraded: face detector runs on onnxruntime (tensorrt failed to load it")
    assert statuses == [worker.status] and "mask classifier" in worker.status
    assert [line.split(":")[0] for line in det.backend_lines()] == ["face detector + mask classifier"]


# -- engine cache --------------------------------------------------------------------------------------------------
def test_key_covers_workspace_and_build_settings():
    base = ["ab" * 32, "Orin", "8.5.2.2", "fp16", dict(trtb.DEFAULT_PROFILE), 256]
    k = trtb.engine_key(*base)
    for i, other in enumerate(["cd" * 32, "Xavier", "10.3.0", "fp32", dict(trtb.DEFAULT_PROFILE, max_batch=8), 512]):
        changed = list(base)
        changed[i] = other
        assert trtb.engine_key(*changed) != k, i
    assert trtb.DEFAULT_PROFILE["max_batch"] == 32


def test_concurrent_builders_build_once_with_their_own_temp_files(gpu, tmp_path, monkeypatch):
    trt, _rt = gpu
    build = trt.Builder.build_serialized_network
    temps = []
    real_mkstemp = trtb.tempfile.mkstemp

    def slow_build(self, network, config):
        time.sleep(0.3)
        return build(self, network, config)

    def recording_mkstemp(**kw):
        fd, name = real_mkstemp(**kw)
        temps.append(name)
        return fd, name

    monkeypatch.setattr(trt.Builder, "build_serialized_network", slow_build)
    monkeypatch.setattr(trtb.tempfile, "mkstemp", recording_mkstemp)
    results = []
    threads = [threading.Thread(target=lambda: results.append(trtb.ensure_engine(MASK, str(tmp_path)).status))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["built", "cached"] and len(trt.builds) == 1
    assert len(temps) == 1 and temps[0].endswith(".tmp") and os.path.dirname(temps[0]) == str(tmp_path)
    assert sorted(os.listdir(str(tmp_path))) == sorted(os.path.basename(p) for p in [
        trtb.engine_path(str(tmp_path), MASK, trtb.ensure_engine(MASK, str(tmp_path)).key),
        trtb.lock_path(trtb.engine_path(str(tmp_path), MASK, trtb.ensure_engine(MASK, str(tmp_path)).key))])
    a, b = [trtb.write_atomically, trtb.write_atomically]
    a(str(tmp_path / "x.engine"), b"one")
    b(str(tmp_path / "x.engine"), b"two")
    assert (tmp_path / "x.engine").read_bytes() == b"two" and not list(tmp_path.glob("x.*.tmp"))


def test_stale_cleanup_with_the_new_names(gpu, tmp_path):
    cache = str(tmp_path)
    first = trtb.ensure_engine(MASK, cache)
    old_tmp = tmp_path / "mask_classifier-{}.abc123.tmp".format(first.key[:16])
    new_tmp = tmp_path / "mask_classifier-{}.def456.tmp".format(first.key[:16])
    neighbour = tmp_path / "mask_classifier_ft-{}.engine".format("0" * 16)
    for p in (old_tmp, new_tmp, neighbour):
        p.write_bytes(b"x")
    os.utime(str(old_tmp), (time.time() - 7200, time.time() - 7200))
    second = trtb.ensure_engine(MASK, cache, workspace_mib=512)  # a new key: the old engine and its lock go
    assert second.status == "rebuilt (stale)" and second.key != first.key
    left = set(os.listdir(cache))
    assert os.path.basename(first.path) not in left and os.path.basename(trtb.lock_path(first.path)) not in left
    assert old_tmp.name not in left and new_tmp.name in left and neighbour.name in left
    with open(second.path, "wb") as f:
        f.write(b"truncated")
    assert trtb.ensure_engine(MASK, cache, workspace_mib=512).status == "rebuilt (corrupt)"


@pytest.mark.parametrize("max_batch, n, runs", [(32, 40, 2), (16, 17, 2), (32, 32, 1)])
def test_batches_above_the_profile_run_in_chunks(gpu, tmp_path, max_batch, n, runs):
    r = trtb.TensorRTRunner(MASK, cache_dir=str(tmp_path), max_batch=max_batch)
    assert r.max_batch == max_batch
    x = np.random.default_rng(n).standard_normal((n, 3, 64, 64)).astype(np.float32)
    before = r._ctx.executions
    got = r.run({"input": x})["probs"]
    assert r._ctx.executions - before == runs
    np.testing.assert_allclose(got, load_model(MASK, "onnxruntime").run({"input": x})["probs"], atol=1e-5)
    inplace = r.input_array("input", (n, 3, 64, 64))
    inplace[...] = x  # a chunked run from the runner's own buffer, whose front each chunk overwrites
    np.testing.assert_allclose(r.run({"input": inplace})["probs"], got, atol=1e-6)


# -- per-frame work ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("integrated", [True, False])
def test_mapped_memory_on_an_integrated_gpu_copies_nothing(monkeypatch, tmp_path, integrated):
    _trt, rt = _gpu(monkeypatch, integrated=integrated)
    r = trtb.TensorRTRunner(MASK, cache_dir=str(tmp_path))
    x = np.random.default_rng(1).standard_normal((4, 3, 64, 64)).astype(np.float32)
    got = r.run({"input": x})["probs"]
    np.testing.assert_allclose(got, load_model(MASK, "onnxruntime").run({"input": x})["probs"], atol=1e-5)
    assert r.zero_copy is integrated
    kinds = {rt.kinds[buf[2]] for buf in r._buf.values()}
    if integrated:
        assert rt.copies == [] and kinds == {"mapped"}
    else:
        assert {k for k, _ in rt.copies} == {1, 2} and kinds == {"device"}
    r.close()
    assert rt.memory == {}


def test_inputs_are_built_in_the_runners_buffer(gpu, tmp_path, frames):
    det = MaskDetector.for_mode(FACE, MASK, "live", "tensorrt", scale=0.5, min_long_side=320, box_correction="identity")
    ref = MaskDetector.for_mode(FACE, MASK, "live", "onnxruntime", scale=0.5, min_long_side=320, box_correction="identity")
    blob = det.faces._prepare(frames[0])[0]
    runner = det.faces.runner
    assert np.shares_memory(blob, runner._buf[det.faces.input_name][0])
    assert runner._is_own_buffer(det.faces.input_name, blob)
    np.testing.assert_array_equal(blob, ref.faces._prepare(frames[0])[0])
    for frame in frames:
        a, b = det.detect_arrays(frame), ref.detect_arrays(frame)
        assert len(a[0]) == len(b[0]) and len(a[0])
        np.testing.assert_allclose(a[0], b[0], atol=1e-2)
        np.testing.assert_allclose(a[2], b[2], atol=1e-4)


def test_cpu_preprocessing_is_unchanged(frames):
    """The blob the CPU path makes equals the formula it had (np.zeros, then the resized frame), bit for bit."""
    ort_face = load_model(FACE, "onnxruntime")
    for scale in (0.5, 0.75, 1.0, 1.3):
        det = FaceDetector(FACE, runner=ort_face, scale=scale, min_long_side=int(round(640 * scale)))
        for frame in frames:
            blob, sx, sy = det._prepare(frame)
            h, w = frame.shape[:2]
            rw, rh = int(round(sx * w)), int(round(sy * h))
            img = frame if (rw, rh) == (w, h) else cv2.resize(
                frame, (rw, rh), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
            want = np.zeros(blob.shape, np.float32)
            want[0, :, :rh, :rw] = img.transpose(2, 0, 1)
            np.testing.assert_array_equal(blob, want)
    crops = np.random.default_rng(2).uniform(0, 255, (5, 64, 64, 3)).astype(np.float32)
    out = np.full((5, 3, 64, 64), np.nan, np.float32)
    assert to_model_input(crops, out) is out
    np.testing.assert_array_equal(out, to_model_input(crops))


def test_kernel_reference_matches_the_cpu_preprocessing(frames):
    """The CUDA kernel's arithmetic (its numpy reference) against the CPU path's cv2.resize + CHW float32."""
    ort_face = load_model(FACE, "onnxruntime")
    for scale, exact in ((0.5, True), (0.75, False), (1.0, True), (1.3, False)):
        det = FaceDetector(FACE, runner=ort_face, scale=scale, min_long_side=int(round(640 * scale)))
        for frame in frames:
            h, w = frame.shape[:2]
            s, rw, rh, pw, ph = det._geometry(w, h)
            gpu = cuda_preprocess.reference(frame, (rw, rh), (pw, ph), area=not s > 1)
            cpu = det._prepare(frame)[0]
            diff = np.abs(gpu - cpu)
            assert diff.max() <= (0 if exact else 1), (scale, diff.max())  # the kiosk's 0.5: identical
            assert diff.mean() < 0.15
    assert "bgr8_to_chw_f32" in cuda_preprocess.SOURCE and "floorf(v[c] + 0.5f)" in cuda_preprocess.SOURCE


def test_a_cuda_frame_feeds_the_engine_without_a_host_round_trip(gpu, tmp_path, frames, monkeypatch):
    monkeypatch.setattr(cuda_preprocess, "compile_kernel", lambda cuda: FakeKernel())
    det = MaskDetector.for_mode(FACE, MASK, "live", "tensorrt", scale=0.5, min_long_side=320, box_correction="identity")
    launches = FakeKernel.launches
    for frame in frames:
        cpu = det.detect(frame)
        on_gpu = det.detect(frame, device=cuda_image(frame))
        assert [d.box for d in on_gpu] == [d.box for d in cpu] and len(cpu)
    assert FakeKernel.launches - launches == len(frames)
    # a runner without the kernel (ONNX Runtime), or an image that is not the frame's, takes the CPU path
    odd = cuda_image(frames[0][:240])
    assert [d.box for d in det.detect(frames[0], device=odd)] == [d.box for d in det.detect(frames[0])]
    assert FakeKernel.launches - launches == len(frames)
    ort = MaskDetector.for_mode(FACE, MASK, "live", "onnxruntime", scale=0.5, min_long_side=320, box_correction="identity")
    assert [d.box for d in ort.detect(frames[0], device=cuda_image(frames[0]))] == [d.box for d in ort.detect(frames[0])]


def test_without_a_kernel_compiler_tensorrt_keeps_the_cpu_preprocessing(gpu, tmp_path, frames, monkeypatch, caplog):
    def no_nvrtc(cuda):
        raise ImportError("No module named 'cuda.bindings.nvrtc'")

    monkeypatch.setattr(cuda_preprocess, "compile_kernel", no_nvrtc)
    det = MaskDetector.for_mode(FACE, MASK, "live", "tensorrt", scale=0.5, min_long_side=320, box_correction="identity")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            got = det.detect(frames[0], device=cuda_image(frames[0]))
    assert det.faces.runner.backend == "tensorrt" and [d.box for d in got] == [d.box for d in det.detect(frames[0])]
    assert len([r for r in caplog.records if "preprocessing kernel" in r.getMessage()]) == 1


# -- bench device --------------------------------------------------------------------------------------------------
def test_bench_device_against_the_fake(gpu, tmp_path, frames, monkeypatch):
    from kiosk.bench.device import run_device_bench

    monkeypatch.setattr(cuda_preprocess, "compile_kernel", lambda cuda: FakeKernel())
    report = run_device_bench([FACE, MASK], str(tmp_path), ("fp16", "fp32"), runs=3, warmup=1, frames=frames)
    assert report["ok"] is True and report["gpu"] == "Fake GPU" and report["versions"]["tensorrt"] == "10.0.0.fake"
    assert [(m["kind"], m["precision"]) for m in report["models"]] == [
        ("face detector", "fp16"), ("face detector", "fp32"), ("mask classifier", "fp16"), ("mask classifier", "fp32")]
    for m in report["models"]:
        assert m["ok"] and max(m["max_abs_diff"].values()) < 1e-4 and m["engine"]["status"] == "built"
        assert set(m["timing"]) == {"input", "tensorrt", "onnxruntime"} and m["timing"]["tensorrt"]["runs"] == 3
    assert report["models"][2]["inputs"] == 3 and report["models"][2]["engine"]["max_batch"] == 32
    step = report["vision_step"]
    assert step["faces_found_same"] == step["frames"] == len(frames)
    assert step["device_input"]["available"] and step["device_input"]["max_abs_diff_vs_cpu"] == 0.0
    assert report["tolerances"]["fp16"]["atol"] == 1e-2 and report["tolerances"]["fp32"]["rtol"] == 1e-3


def test_bench_device_fails_on_wrong_outputs(monkeypatch, tmp_path, frames):
    from kiosk.bench.device import run_device_bench

    _gpu(monkeypatch, wrong=True)
    report = run_device_bench([MASK], str(tmp_path), ("fp16",), runs=2, warmup=0, frames=frames)
    assert report["ok"] is False and report["models"][0]["failed_outputs"] == ["probs"]


def test_bench_device_without_a_gpu_exits_2(monkeypatch, capsys, tmp_path):
    from kiosk.cli import main

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(trtb, "_probe", None)
    assert main(["bench", "device", "--json", "--home", str(tmp_path), MASK]) == 2
    err = capsys.readouterr().err
    assert "bench device needs TensorRT and a CUDA GPU: tensorrt is not installed" in err


def test_backend_summary_without_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(trtb, "_probe", None)
    text = backend_summary(load_model(MASK))
    assert text.startswith("onnxruntime [CPUExecutionProvider] (tensorrt unavailable: tensorrt is not installed")


def test_doctor_says_which_backend_runs_each_model(gpu, tmp_path, monkeypatch):
    from kiosk.config import Config, Home
    from kiosk.runtime.doctor import _vision

    monkeypatch.setenv("DABAI_HOME", str(tmp_path))
    part, ok, detail = _vision(Config(), Home(tmp_path))
    assert ok and detail.endswith(": face detector + mask classifier: tensorrt (engine built)"), detail
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(trtb, "_probe", None)
    part, ok, detail = _vision(Config(), Home(tmp_path))
    assert ok and ("face detector + mask classifier: onnxruntime [CPUExecutionProvider] (tensorrt unavailable: "
                   "tensorrt is not installed") in detail, detail


# -- on a real GPU (tools/device_check.sh); skipped elsewhere ------------------------------------------------------
@pytest.fixture
def real_gpu(monkeypatch):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it comes with JetPack)")
    monkeypatch.setattr(trtb, "_probe", None)
    if not trtb.available():
        pytest.skip("TensorRT backend unavailable: {}".format(trtb.UNAVAILABLE_REASON))


def test_real_kernel_matches_its_reference(real_gpu, frames):
    cuda = trtb._Cuda()
    with cuda:
        kernel = cuda_preprocess.compile_kernel(cuda)
        for frame in frames:
            h, w = frame.shape[:2]
            for (rw, rh), (pw, ph), area in (((320, 240), (320, 256), True), ((480, 360), (480, 384), True),
                                             ((800, 600), (800, 608), False), ((640, 480), (640, 480), True)):
                src, src_owner, src_ptr = cuda.alloc(frame.nbytes)
                src[:frame.nbytes] = frame.reshape(-1)
                cuda.to_device(src_ptr, src, frame.nbytes)
                n = 3 * ph * pw * 4
                dst, dst_owner, dst_ptr = cuda.alloc(n)
                kernel.launch(src_ptr, w, h, w * 3, dst_ptr, rw, rh, pw, ph, area, cuda.handle)
                cuda.to_host(dst, dst_ptr, n)
                cuda.sync()
                got = dst[:n].view(np.float32).reshape(1, 3, ph, pw)
                want = cuda_preprocess.reference(frame, (rw, rh), (pw, ph), area)
                assert np.abs(got - want).max() <= 1.0 and np.mean(got != want) < 0.01, (rw, rh)
                cuda.free(src_owner)
                cuda.free(dst_owner)


def test_real_engine_chunks_and_matches_onnxruntime(real_gpu, tmp_path):
    r = load_model(MASK, "tensorrt", cache_dir=str(tmp_path))
    ref = load_model(MASK, "onnxruntime", use_gpu=False)
    assert r.max_batch == 32
    x = np.random.default_rng(3).standard_normal((40, 3, 64, 64)).astype(np.float32)
    assert np.abs(r.run({"input": x})["probs"] - ref.run({"input": x})["probs"]).max() < 1e-2
    inplace = r.input_array("input", (5, 3, 64, 64))
    inplace[...] = x[:5]
    assert np.abs(r.run({"input": inplace})["probs"] - ref.run({"input": x[:5]})["probs"]).max() < 1e-2
