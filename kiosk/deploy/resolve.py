"""``make jetson-deps``: pip resolves each JetPack's runtime requirements for aarch64 at its Python version.

A dry run (``pip install --dry-run --only-binary=:all: --platform manylinux_2_X_aarch64 ...``) that
installs nothing: a pin with no wheel there, a dependency that would shadow JetPack (opencv-python, PyQt5),
numpy past the JetPack's bound or a package the constraints file does not pin fails CI, not a device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import List, Optional, Sequence

from kiosk.deploy.jetpack import JETPACKS, NODEPS_FILE, SOURCE, JetPack, normalize, read_pins, version_tuple

# JetPack gives these; a wheel of them in the venv would hide JetPack's (cv2 without GStreamer, PyQt5 from pip).
SHADOWS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless",
           "pyqt5", "tensorrt")
# What the installer adds on the command line (the CUDA bindings, onnxruntime when the system has none, the
# venv's own tools), resolved here as if all were needed.
EXTRA = ("cuda-python", "onnxruntime", "pip", "setuptools", "wheel")


def platforms(jp: JetPack) -> List[str]:
    """pip does not widen --platform manylinux_2_31 to older glibc tags: name each one up to the JetPack's glibc."""
    major, minor = jp.glibc
    tags = ["manylinux_{}_{}_aarch64".format(major, m) for m in range(17, minor + 1)] + ["manylinux2014_aarch64"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def pip_command(jp: JetPack, source: str, report: Optional[str], cache_dir: Optional[str],
                nodeps: bool = False) -> List[str]:
    folder = os.path.join(source, os.path.dirname(jp.requirements))
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet"] + platforms(jp) + [
           "--python-version", jp.python, "--implementation", "cp", "-c", os.path.join(source, jp.constraints)]
    if cache_dir:
        cmd += ["--cache-dir", cache_dir]
    if nodeps:
        return cmd + ["--no-deps", "-r", os.path.join(folder, NODEPS_FILE)]
    cmd += ["-r", os.path.join(source, jp.requirements)] + list(EXTRA)
    return cmd + (["--report", report] if report else [])


def check_report(jp: JetPack, report: dict, pins: dict) -> List[str]:
    """What is wrong with a resolution: shadowing wheels, numpy past the bound, packages left unpinned."""
    problems = []
    for item in report.get("install", []):
        name, version = normalize(item["metadata"]["name"]), item["metadata"]["version"]
        if name in SHADOWS:
            problems.append("{} {} would shadow JetPack's own: find what requires it and drop it".format(name, version))
        if name == "numpy" and version_tuple(version) >= version_tuple(jp.numpy_below):
            problems.append("numpy {} is not < {}".format(version, jp.numpy_below))
        if name not in pins:
            problems.append("{} {} is not pinned in {}: add {}=={}".format(name, version, jp.constraints, name, version))
    return problems


def resolve(numbers: Sequence[int], source: str = SOURCE, out_dir: str = "out",
            cache_dir: Optional[str] = None) -> int:
    rc = 0
    os.makedirs(out_dir, exist_ok=True)
    for number in numbers:
        jp = JETPACKS[number]
        report_path = os.path.join(out_dir, "jetson-deps-jp{}.json".format(number))
        start = time.monotonic()
        problems = []
        for nodeps in (False, True):
            cmd = pip_command(jp, source, None if nodeps else report_path, cache_dir, nodeps)
            if subprocess.call(cmd) != 0:
                problems.append("pip could not resolve {} for cp{} aarch64 (see above): {}".format(
                    "requirements-nodeps.txt" if nodeps else os.path.basename(jp.requirements),
                    jp.python.replace(".", ""), " ".join(cmd)))
        if not problems:
            with open(report_path, encoding="utf-8") as f:
                report = json.load(f)
            problems = check_report(jp, report, read_pins(os.path.join(source, jp.constraints)))
            names = ", ".join("{} {}".format(i["metadata"]["name"], i["metadata"]["version"])
                              for i in report.get("install", []))
            print("JetPack {} (Python {}, aarch64, glibc {}.{}): {} packages resolve in {:.1f} s: {}".format(
                jp.number, jp.python, jp.glibc[0], jp.glibc[1], len(report.get("install", [])),
                time.monotonic() - start, names))
        for p in problems:
            print("jetson-deps: JetPack {}: {}".format(jp.number, p), file=sys.stderr)
        rc = rc or (1 if problems else 0)
    return rc
