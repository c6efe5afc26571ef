"""Is the relay's header pin able to drive anything? The pin mux as Linux shows it, and the JetPack release.

On JetPack 6 a 40-pin header pin whose pad is not configured for output (in the flashed pinmux, or by a jetson-io
/ device-tree overlay) takes Jetson.GPIO's writes without complaint and drives nothing: the GPIO controller's
output register changes, so even Jetson.GPIO's read-back agrees, but the pad's output driver is off
("tristate"). On JetPack 5 the pin keeps its level after the process that drove it dies. Neither shows through
Jetson.GPIO, so this module reads what the kernel says (root only: debugfs):

* Jetson.GPIO's own pin table gives the BOARD pin's GPIO name, e.g. pin 7 on an Orin Nano = ``PAC.06``; the
  pinctrl names end with the same port and line (``soc_gpio59_pac6``);
* ``/sys/kernel/debug/pinctrl/<controller>/pinmux-pins``: ``pin N (NAME): <mux owner> <gpio owner> [function F
  group G]``; a pin claimed by a peripheral (``3100000.serial``, function ``uarta``) is not a GPIO;
* ``/sys/kernel/debug/pinctrl/<controller>/pinconf-groups``: per group ``tristate=0|1``, ``enable-input=0|1`` and,
  on newer kernels, ``function=...`` (Tegra's pinctrl driver); ``tristate=1`` means the output driver is off.

What it cannot see: the SFIO/GPIO select bit of the pinmux register (only /dev/mem shows it); the kernel's GPIO
driver sets it when Jetson.GPIO takes the line. Every path can be rooted elsewhere (``root``) for tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

MUX_FIX = ("configure it as an output GPIO: sudo /opt/nvidia/jetson-io/jetson-io.py, or a device-tree overlay with "
           "nvidia,tristate = <0> and nvidia,enable-input = <1> for this pin, then reboot")


@dataclass(frozen=True)
class MuxCheck:
    status: str  # "ok", "not muxed", "unknown" (cannot tell: not a failure)
    detail: str


def l4t_release(root: Path = Path("/")) -> Optional[Tuple[int, str]]:
    """(major, revision) of the L4T release from /etc/nv_tegra_release, e.g. (35, "4.1"); None off a Jetson."""
    try:
        text = (root / "etc" / "nv_tegra_release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)", text)
    return (int(match.group(1)), match.group(2)) if match else None


def jetpack_of(l4t_major: int) -> Optional[int]:
    """JetPack 4, 5 or 6 for L4T R32, R35 (R34 for the early 5.0 previews) or R36."""
    return {32: 4, 34: 5, 35: 5, 36: 6}.get(l4t_major)


def jetpack_note(root: Path = Path("/")) -> Optional[Tuple[bool, str]]:
    """What the JetPack release means for a relay on a header pin, as (ok, text); None off a Jetson."""
    release = l4t_release(root)
    if release is None:
        return None
    jetpack = jetpack_of(release[0])
    name = "L4T R{}.{}".format(*release) + (" (JetPack {})".format(jetpack) if jetpack else "")
    if jetpack == 5:
        return True, ("{}: a header pin KEEPS its level after the process that drove it dies; what releases the "
                      "relay after a crash is the gate guardian (gate.guardian = true) and the service's "
                      "ExecStopPost=dabai-kiosk gate close".format(name))
    if jetpack == 6:
        return True, ("{}: a pin returns to its pinmux default when released, and drives nothing unless it is "
                      "configured as an output GPIO (the pin mux check)".format(name))
    return True, name


def gpio_name_of(pin: int) -> Optional[str]:
    """The BOARD pin's GPIO name (``PAC.06``) from Jetson.GPIO's pin table; None without Jetson.GPIO or a model."""
    try:
        from Jetson.GPIO import gpio_pin_data  # type: ignore[import-not-found]

        channels = gpio_pin_data.get_data()[2]["BOARD"]
        name = getattr(channels[pin], "gpio_name", None)
    except Exception:  # no Jetson.GPIO, an unknown model, an old version without names: cannot tell
        return None
    return str(name) if name else None


def pinctrl_suffix(gpio_name: str) -> Optional[str]:
    """``PAC.06`` -> ``pac6``: the end of the pin's pinctrl name."""
    match = re.fullmatch(r"P([A-Z]{1,2})\.(\d{1,2})", gpio_name.strip().upper())
    return "p{}{}".format(match.group(1).lower(), int(match.group(2))) if match else None


def _groups(text: str) -> Dict[str, Dict[str, str]]:
    """pinconf-groups: group name -> its ``key=value`` settings."""
    groups: Dict[str, Dict[str, str]] = {}
    current: Optional[Dict[str, str]] = None
    for line in text.splitlines():
        header = re.match(r"\s*\d+\s+\(([^)]+)\):(.*)$", line)
        if header:
            current = groups.setdefault(header.group(1).lower(), {})
            line = header.group(2)
        if current is None:
            continue
        for key, value in re.findall(r"([\w-]+)=(\S+)", line):
            current[key] = value
    return groups


def _matches(name: str, suffix: str) -> bool:
    return name.lower().endswith("_" + suffix)


def check_pin_mux(pin: int, gpio_name: Optional[str] = None, root: Path = Path("/")) -> MuxCheck:
    """Whether BOARD pin ``pin`` can drive the relay, as far as the kernel shows it (see the module)."""
    name = gpio_name if gpio_name is not None else gpio_name_of(pin)
    if not name:
        return MuxCheck("unknown", "cannot tell: Jetson.GPIO does not name pin {}'s GPIO here".format(pin))
    suffix = pinctrl_suffix(name)
    if suffix is None:
        return MuxCheck("unknown", "cannot tell: pin {} is GPIO {!r}, not a Tegra port name".format(pin, name))
    debug = root / "sys" / "kernel" / "debug"
    pinctrl = debug / "pinctrl"
    try:
        controllers = sorted(p for p in pinctrl.iterdir() if p.is_dir())
    except PermissionError:
        return MuxCheck("unknown", "cannot tell: {} is readable only by root (run sudo dabai-kiosk doctor)".format(debug))
    except OSError:
        return MuxCheck("unknown", "cannot tell: no {} (debugfs not mounted?)".format(pinctrl))
    for controller in controllers:
        try:
            groups = _groups((controller / "pinconf-groups").read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        found = [g for g in groups if _matches(g, suffix)]
        if not found:
            continue
        group, settings = found[0], groups[found[0]]
        where = "pin {} ({}, {})".format(pin, name, group)
        owner, function = _mux_owner(controller, suffix)
        if owner is not None and owner != controller.name and not owner.startswith("(") and not _is_gpio(function):
            return MuxCheck("not muxed", "{} is claimed by {} (function {}): not a GPIO; {}".format(
                where, owner, function or "?", MUX_FIX))
        if settings.get("tristate") == "1":
            return MuxCheck("not muxed", "{}: tristate=1, its output driver is off, so writing the pin drives "
                                         "nothing; {}".format(where, MUX_FIX))
        seen = ", ".join("{}={}".format(k, settings[k]) for k in ("tristate", "enable-input", "function")
                         if k in settings)
        if "tristate" not in settings:
            return MuxCheck("unknown", "cannot tell: {} shows no tristate setting ({})".format(where, seen or "none"))
        note = "; enable-input=0: the pad cannot be read back" if settings.get("enable-input") == "0" else ""
        return MuxCheck("ok", "{}: output enabled ({}){}".format(where, seen, note))
    return MuxCheck("unknown", "cannot tell: no pinctrl group for pin {} ({}) under {}".format(pin, name, pinctrl))


def _is_gpio(function: Optional[str]) -> bool:
    return function is None or function.startswith(("rsvd", "gp"))


def _mux_owner(controller: Path, suffix: str) -> Tuple[Optional[str], Optional[str]]:
    """(mux owner, function) of the pin in ``pinmux-pins``; (None, None) when it is not listed."""
    try:
        lines: List[str] = (controller / "pinmux-pins").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None, None
    for line in lines:
        match = re.match(r"pin\s+\d+\s+\(([^)]+)\):\s*(\S+)", line)
        if match and _matches(match.group(1), suffix):
            owner = match.group(2)
            function = re.search(r"\bfunction\s+(\S+)", line)
            return owner, function.group(1) if function else None
    return None, None
