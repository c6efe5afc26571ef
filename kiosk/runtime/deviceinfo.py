"""What this device is, for the operator's 设备信息 and for a support call: model, JetPack / L4T, OS, versions,
disk, uptime and IP addresses. Read from files only (no network, no commands); every reader takes the system
root as ``root`` so the tests can hand it a fake one. Nothing here imports Qt."""

from __future__ import annotations

import importlib
import platform
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from kiosk.deploy.jetpack import jetpack_of_l4t, parse_l4t

ROOT = Path("/")


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_model(root: Path = ROOT) -> Optional[str]:
    """The board (``/proc/device-tree/model`` on a Jetson, NUL-terminated), else the PC's DMI product name."""
    tree = _read(root / "proc" / "device-tree" / "model")
    if tree and tree.strip("\x00\n "):
        return tree.strip("\x00\n ")
    dmi = root / "sys" / "class" / "dmi" / "id"
    name = (_read(dmi / "product_name") or "").strip()
    vendor = (_read(dmi / "sys_vendor") or "").strip()
    if name and vendor and not name.lower().startswith(vendor.lower()):
        return "{} {}".format(vendor, name)
    return name or None


def read_l4t(root: Path = ROOT) -> Optional[Tuple[Optional[int], str]]:
    """(JetPack major or None, L4T release such as "35.4.1") from ``/etc/nv_tegra_release``; None off a Jetson."""
    parsed = parse_l4t(_read(root / "etc" / "nv_tegra_release") or "")
    if parsed is None:
        return None
    jetpack = jetpack_of_l4t(parsed[0])
    return (jetpack.number if jetpack else None), parsed[1]


def read_os(root: Path = ROOT) -> Optional[str]:
    """``PRETTY_NAME`` of ``/etc/os-release`` (e.g. Ubuntu 20.04.6 LTS)."""
    for line in (_read(root / "etc" / "os-release") or "").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PRETTY_NAME":
            return value.strip().strip("\"'") or None
    return None


def read_uptime(root: Path = ROOT) -> Optional[float]:
    """Seconds since boot (``/proc/uptime``)."""
    try:
        return float((_read(root / "proc" / "uptime") or "").split()[0])
    except (IndexError, ValueError):
        return None


def format_uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    zh = ("{} 天 ".format(days) if days else "") + "{} 小时 {} 分".format(hours, minutes)
    en = ("{} d ".format(days) if days else "") + "{} h {} min".format(hours, minutes)
    return "{} ({})".format(zh, en)


def read_ipv4(root: Path = ROOT) -> List[str]:
    """The machine's own IPv4 addresses, loopback left out: the ``/32 host LOCAL`` entries of
    ``/proc/net/fib_trie``."""
    found: List[str] = []
    last = None
    for line in (_read(root / "proc" / "net" / "fib_trie") or "").splitlines():
        text = line.strip()
        if text.startswith("|--"):
            last = text[3:].strip()
        elif "/32 host LOCAL" in text and last and not last.startswith("127.") and last not in found:
            found.append(last)
    return found


def read_ipv6(root: Path = ROOT) -> List[str]:
    """Global IPv6 addresses from ``/proc/net/if_inet6`` (link-local and loopback left out)."""
    found: List[str] = []
    for line in (_read(root / "proc" / "net" / "if_inet6") or "").splitlines():
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32 or fields[3] != "00":  # scope 00: global
            continue
        groups = [fields[0][i:i + 4].lstrip("0") or "0" for i in range(0, 32, 4)]
        address = _compress(groups)
        if address not in found:
            found.append(address)
    return found


def _compress(groups: List[str]) -> str:
    """Eight hex groups in the short form (the longest run of zero groups as ``::``)."""
    best, start = (0, -1), None
    for i, group in enumerate(groups + ["x"]):
        if group == "0" and start is None:
            start = i
        elif group != "0" and start is not None:
            if i - start > best[0]:
                best = (i - start, start)
            start = None
    if best[0] < 2:
        return ":".join(groups)
    head, tail = groups[:best[1]], groups[best[1] + best[0]:]
    return ":".join(head) + "::" + ":".join(tail)


def disk_usage(path: Path) -> Optional[Tuple[float, float]]:
    """(free GB, total GB) of the file system holding ``path``."""
    try:
        usage = shutil.disk_usage(str(path))
    except OSError:
        return None
    return usage.free / 1e9, usage.total / 1e9


def module_version(name: str, attribute: str = "__version__") -> Optional[str]:
    """The version of an installed module, or None when it is not installed or fails to import."""
    try:
        module = sys.modules.get(name) or importlib.import_module(name)
    except Exception:  # a missing or broken optional library: "not installed" for the operator
        return None
    value = getattr(module, attribute, None)
    return str(value) if value else None


def kiosk_version() -> str:
    """The installed package's version, else the source's."""
    try:
        from importlib.metadata import version  # Python 3.8+

        return version("dabai-kiosk")
    except Exception:  # not installed as a package (a bare checkout)
        import kiosk

        return kiosk.__version__


def software_versions() -> Dict[str, Optional[str]]:
    """Versions of what the kiosk runs on; None for what is not installed here."""
    return {
        "kiosk": kiosk_version(),
        "python": platform.python_version(),
        "onnxruntime": module_version("onnxruntime"),
        "tensorrt": module_version("tensorrt"),
        "opencv": module_version("cv2"),
        "qt": module_version("PyQt5.QtCore", "QT_VERSION_STR"),
        "pyqt": module_version("PyQt5.QtCore", "PYQT_VERSION_STR"),
    }


def device_info(home_root: Path, root: Path = ROOT) -> Dict[str, object]:
    """Everything above at once (slow-ish: imports and the disk; call it off the GUI thread)."""
    return {
        "model": read_model(root),
        "l4t": read_l4t(root),
        "os": read_os(root),
        "versions": software_versions(),
        "disk": disk_usage(home_root),
        "uptime": read_uptime(root),
        "ipv4": read_ipv4(root),
        "ipv6": read_ipv6(root),
        "home": str(home_root),
    }
