"""The cameras present on this machine, for the operator's Devices page, ``doctor`` and ``dabai-kiosk cameras``.

Each ``/sys/class/video4linux/videoN`` is a V4L2 node; its ``name`` is the driver's name for it. A Jetson
CSI sensor also has such a node (the tegra-capture-vi driver names it ``vi-output, imx219 9-0010``), but
V4L2 on it gives raw Bayer frames without the ISP: it is offered as ``csi://N`` (nvarguscamerasrc
``sensor-id=N``, the N-th CSI node in node order) instead of ``/dev/videoN``. A USB camera's second node
(``index`` 1, its metadata) gives no pictures and is listed last, marked so.

Nothing here opens a device: it reads names only, so it is quick and safe while the app holds the camera.
``root`` lets the tests use a fake tree (``root/sys/class/video4linux``, ``root/dev``).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import List, Optional

SYSFS = "sys/class/video4linux"
CSI_DRIVERS = ("tegra-capture-vi", "tegra-vi", "tegra194-vi5", "tegra210-vi", "vi-output")


@dataclass(frozen=True)
class FoundCamera:
    spec: str  # what to write in camera.source
    name: str  # the driver's name for it ("" when sysfs does not say)
    node: str  # its /dev/videoN
    kind: str  # "v4l2" or "csi"
    note: str = ""  # why it is listed the way it is

    @property
    def label(self) -> str:
        """One line for a picker: the spec, the name and the note."""
        words = [self.spec] + [w for w in (self.name, self.note) if w]
        return "  ·  ".join(words)


def _read(path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read(256).strip()
    except OSError:
        return ""


def _node_number(path: str) -> int:
    digits = re.sub(r"\D", "", os.path.basename(path))
    return int(digits) if digits else -1


def _is_csi(name: str, driver: str) -> bool:
    """A Jetson CSI capture node, by its name ("vi-output, imx219 9-0010") or its driver (tegra-capture-vi)."""
    text = "{} {}".format(name, driver).lower()
    return any(word in text for word in CSI_DRIVERS)


def _sensor(name: str) -> str:
    """The sensor's name from a CSI node's name: "vi-output, imx219 9-0010" -> "imx219"."""
    rest = name.split(",", 1)[1] if "," in name else name
    words = rest.split()
    return words[0] if words else name


def _nodes(root: str) -> List[str]:
    """The videoN names found in sysfs or /dev, in number order."""
    names = {os.path.basename(p) for p in glob.glob(os.path.join(root, SYSFS, "video[0-9]*"))}
    names |= {os.path.basename(p) for p in glob.glob(os.path.join(root, "dev", "video[0-9]*"))}
    return sorted(names, key=_node_number)


def list_cameras(root: str = "/") -> List[FoundCamera]:
    """The cameras present: CSI sensors as ``csi://N`` first, then V4L2 capture nodes, then second nodes."""
    csi: List[FoundCamera] = []
    v4l2: List[FoundCamera] = []
    extra: List[FoundCamera] = []
    for node in _nodes(root):
        sys_dir = os.path.join(root, SYSFS, node)
        name = _read(os.path.join(sys_dir, "name"))
        driver = os.path.basename(os.path.realpath(os.path.join(sys_dir, "device", "driver")))
        dev = "/dev/{}".format(node)
        if _is_csi(name, driver):
            sensor = _sensor(name)
            csi.append(FoundCamera("csi://{}".format(len(csi)), sensor, dev, "csi",
                                   "CSI sensor on {} (V4L2 there gives raw Bayer)".format(dev)))
        elif _read(os.path.join(sys_dir, "index")) not in ("", "0"):
            extra.append(FoundCamera(dev, name, dev, "v4l2", "second node of a device (metadata, no picture)"))
        else:
            v4l2.append(FoundCamera(dev, name, dev, "v4l2"))
    return csi + v4l2 + extra


def csi_sensor_of(device: str, root: str = "/") -> Optional[FoundCamera]:
    """The ``csi://N`` camera whose V4L2 node is ``device`` (a /dev/videoN path or an index), or None."""
    node = "/dev/video{}".format(device) if str(device).isdigit() else str(device)
    for camera in list_cameras(root):
        if camera.kind == "csi" and camera.node == node:
            return camera
    return None
