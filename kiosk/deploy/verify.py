"""``<venv>/bin/python -m kiosk.deploy.verify --jetpack 5``: does the kiosk's venv see what the GPU path needs?

tensorrt, CUDA bindings that reach the GPU, JetPack's cv2 with GStreamer (not a pip wheel inside the venv),
numpy within the JetPack's bound, Debian's PyQt5, onnxruntime. One line per part; exit 1 naming what is wrong.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from types import ModuleType
from typing import Callable, List, Optional, Sequence, Tuple

from kiosk.deploy.jetpack import JETPACKS, version_tuple

Importer = Callable[[str], ModuleType]


def _inside(path: str, prefix: str) -> bool:
    path, prefix = os.path.realpath(path), os.path.realpath(prefix)
    return path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep)


def _cuda(kind: str, imp: Importer) -> Tuple[Optional[str], List[str]]:
    """(what works, why the others did not): cuda-python's runtime API (either module name), else pycuda."""
    order = ["cuda.bindings.runtime", "cuda.cudart", "pycuda.driver"]
    if kind == "pycuda":
        order = order[2:] + order[:2]
    errors = []
    for name in order:
        try:
            mod = imp(name)
            if name == "pycuda.driver":
                mod.init()
                count = mod.Device.count()
            else:
                err, count = mod.cudaGetDeviceCount()
                if err != mod.cudaError_t.cudaSuccess:
                    raise RuntimeError("cudaGetDeviceCount: {}".format(err))
            if count < 1:
                raise RuntimeError("no CUDA device")
            return "{} ({} device{})".format(name, count, "" if count == 1 else "s"), []
        except Exception as exc:  # an ImportError, or a driver that refuses: both leave TensorRT without CUDA
            errors.append("{}: {}: {}".format(name, type(exc).__name__, exc))
    return None, errors


def check_venv(jetpack: int, cuda: str = "cuda-python", imp: Importer = importlib.import_module,
               prefix: str = sys.prefix, jetson_utils: bool = False) -> Tuple[List[str], List[str]]:
    """(what was found, what is wrong)."""
    jp = JETPACKS[jetpack]
    found: List[str] = []
    problems: List[str] = []

    def load(name: str) -> Optional[ModuleType]:
        try:
            return imp(name)
        except Exception as exc:
            problems.append("{} cannot be imported: {}: {}".format(name, type(exc).__name__, exc))
            return None

    trt = load("tensorrt")
    if trt is not None:
        found.append("tensorrt {}".format(getattr(trt, "__version__", "?")))
    works, errors = _cuda(cuda, imp)
    if works:
        found.append("CUDA bindings: " + works)
    else:
        problems.append("no CUDA bindings reach the GPU ({} expected): {}".format(cuda, "; ".join(errors)))
    cv2 = load("cv2")
    if cv2 is not None:
        where = str(getattr(cv2, "__file__", "") or "")
        gst = re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None
        found.append("cv2 {} at {}, GStreamer {}".format(getattr(cv2, "__version__", "?"), where, "yes" if gst else "no"))
        if where and _inside(where, prefix):
            problems.append("cv2 comes from the venv ({}): a pip OpenCV wheel shadows JetPack's; "
                            "{}/bin/pip uninstall opencv-python opencv-python-headless".format(where, prefix))
        elif not gst:
            problems.append("cv2 at {} has no GStreamer (CSI cameras need it): install JetPack's nvidia-opencv"
                            .format(where))
    np = load("numpy")
    if np is not None:
        version = str(getattr(np, "__version__", "0"))
        found.append("numpy {}".format(version))
        if version_tuple(version) >= version_tuple(jp.numpy_below):
            problems.append("numpy {} is not < {} as JetPack {} needs ({}): pip install -c {}".format(
                version, jp.numpy_below, jp.number,
                "TensorRT 8.5 uses np.bool" if jp.number == 5 else "JetPack's extensions are built for numpy 1.x",
                jp.constraints))
    qt = load("PyQt5.QtCore")
    if qt is not None:
        where = str(getattr(qt, "__file__", "") or "")
        found.append("PyQt5 {} at {}".format(getattr(qt, "QT_VERSION_STR", "?"), where))
        if where and _inside(where, prefix):
            problems.append("PyQt5 comes from the venv ({}): use Debian's python3-pyqt5".format(where))
    ort = load("onnxruntime")
    if ort is not None:
        found.append("onnxruntime {} ({})".format(getattr(ort, "__version__", "?"),
                                                   ", ".join(ort.get_available_providers())))
    if jetson_utils:
        if load("jetson_utils") is not None:
            found.append("jetson_utils")
    return found, problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kiosk.deploy.verify", description=__doc__)
    p.add_argument("--jetpack", type=int, choices=sorted(JETPACKS), required=True)
    p.add_argument("--cuda", choices=("cuda-python", "pycuda"), default="cuda-python")
    p.add_argument("--jetson-utils", action="store_true", help="jetson_utils must import too")
    args = p.parse_args(argv)
    found, problems = check_venv(args.jetpack, args.cuda, jetson_utils=args.jetson_utils)
    for line in found:
        print("ok: " + line)
    for line in problems:
        print("WRONG: " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
