#!/usr/bin/env bash
# The GPU path's checks, for the first machine with an NVIDIA GPU and TensorRT (a Jetson, or a PC).
#
#   tools/device_check.sh            # from the repository, with the kiosk installed (.venv, or the Jetson install)
#   OUT=/tmp/dc tools/device_check.sh
#
# It installs nothing. It prints what is there (GPU, L4T, TensorRT, CUDA bindings, numpy, ONNX Runtime), then runs
#   1. the GPU tests: tests/test_gpu_path.py and tests/test_tensorrt.py (the real-GPU ones skip without TensorRT);
#   2. dabai-kiosk bench device --json: every engine built, compared with ONNX Runtime, timed -> $OUT/bench-device.json;
#   3. dabai-kiosk doctor's backend lines (which backend each model runs on).
# Exit status: 0 when all pass; 1 when a test or a comparison failed; 2 when there is no usable TensorRT + CUDA here.
# Engines go to a scratch data home under $OUT (the kiosk's own cache is left alone).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT=${OUT:-out/device-check}
mkdir -p "$OUT"
HOME_DIR="$OUT/home"
RUNS=${RUNS:-50}
export QT_QPA_PLATFORM=offscreen DABAI_HOME="$HOME_DIR"

echo "== machine"
uname -m
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
[ -f /etc/nv_tegra_release ] && head -1 /etc/nv_tegra_release
"$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "onnxruntime", "tensorrt", "cuda.bindings.runtime", "cuda.cudart", "pycuda.driver", "cv2"):
    try:
        mod = importlib.import_module(name)
        print("{:<22} {}".format(name, getattr(mod, "__version__", "(imported)")))
    except Exception as exc:
        print("{:<22} - ({}: {})".format(name, type(exc).__name__, exc))
from kiosk.inference import available_backends
for name, reason in available_backends().items():
    print("backend {:<14} {}".format(name, "usable" if reason is None else reason))
EOF

rc=0
echo "== GPU tests"
"$PY" -m pytest tests/test_gpu_path.py tests/test_tensorrt.py -q -rs 2>&1 | tee "$OUT/pytest.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

echo "== bench device (runs=$RUNS)"
"$PY" -m kiosk bench device --json --runs "$RUNS" --home "$HOME_DIR" >"$OUT/bench-device.json" 2>"$OUT/bench-device.log"
bench=$?
cat "$OUT/bench-device.log"
if [ "$bench" -eq 2 ]; then
    echo "bench device: no usable TensorRT + CUDA here (exit 2); see above"
    exit 2
fi
[ "$bench" -eq 0 ] || rc=1
"$PY" - "$OUT/bench-device.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("gpu {} (integrated: {}), ok: {}".format(r["gpu"], r["integrated_gpu"], r["ok"]))
for m in r["models"]:
    worst = max([v for v in m.get("max_abs_diff", {}).values() if v is not None] or [float("nan")])
    t = m.get("timing", {})
    print("  {:<16} {:<5} ok={} max|diff|={:.2e} trt p50 {} ms / ort p50 {} ms  zero-copy {}".format(
        m["kind"], m["precision"], m.get("ok"), worst, t.get("tensorrt", {}).get("p50_ms"),
        t.get("onnxruntime", {}).get("p50_ms"), m.get("zero_copy")))
step = r.get("vision_step", {})
if step:
    dev = step.get("device_input", {})
    print("  vision step p50: onnxruntime {} ms, tensorrt {} ms, tensorrt + GPU input {} ms; GPU input vs CPU {}".format(
        step["onnxruntime"]["p50_ms"], step["tensorrt"]["p50_ms"], (dev.get("vision_step") or {}).get("p50_ms"),
        dev.get("max_abs_diff_vs_cpu", dev.get("why"))))
EOF

echo "== doctor (backends)"
"$PY" -m kiosk doctor --home "$HOME_DIR" 2>&1 | grep -E "inference backends|face \+ mask models" || true
echo "results in $OUT (exit $rc)"
exit $rc
