"""``detect(root)``: what the installer needs to know about the machine, read without changing anything.

``root`` is "/" on the Jetson; the tests pass a fake L4T root (a folder with etc/nv_tegra_release,
var/lib/dpkg/status, etc/passwd, stand-in Python modules under usr/lib/python3/dist-packages).
"""

from __future__ import annotations

import configparser
import glob
import hashlib
import json
import os
import subprocess
import sys
from typing import Any, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Set, Tuple

from kiosk.deploy.jetpack import JETPACKS, JetPack, jetpack_of_l4t, parse_l4t

# Directories and files of a checkout that are never copied to the prefix (top level / any level).
EXCLUDE_TOP = frozenset({".git", ".venv", "out", "build", "dist", ".home", ".whl", ".gl", "shared"})
EXCLUDE_ANY = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"})
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target")

# Run by the system python (a child process, so nothing it imports stays in the installer): which of the
# modules JetPack provides can be imported, and what they are.
PROBE = r"""
import json, re, sys
out = {"python": "%d.%d.%d" % sys.version_info[:3], "modules": {}}
for name in ("tensorrt", "cv2", "PyQt5.QtCore", "jetson_utils", "onnxruntime", "numpy",
             "cuda.bindings.runtime", "cuda.cudart", "pycuda.driver"):
    info = {"ok": False}
    try:
        mod = __import__(name, fromlist=["_"])
        info = {"ok": True, "version": str(getattr(mod, "__version__", getattr(mod, "QT_VERSION_STR", ""))),
                "file": str(getattr(mod, "__file__", "") or "")}
        if name == "cv2":
            info["gstreamer"] = bool(re.search(r"GStreamer:\s*YES", mod.getBuildInformation()))
        if name == "onnxruntime":
            info["providers"] = list(mod.get_available_providers())
    except Exception as exc:  # ImportError, or a broken module: both mean "not usable"
        info["error"] = "%s: %s" % (type(exc).__name__, exc)
    out["modules"][name] = info
print(json.dumps(out))
"""


class DeployError(Exception):
    """A refusal with a message for the person at the console (no traceback)."""


class Unit(NamedTuple):
    name: str
    content: str
    wanted_by: List[str]  # [Install] WantedBy= / RequiredBy= targets
    groups: List[str] = []  # [Service] SupplementaryGroups= (a missing one fails the start: 216/GROUP)


class Facts(NamedTuple):
    root: str
    jetpack: JetPack
    l4t: str  # "35.4.1"; "" when --jetpack overrode a missing release file
    python: str  # the system python3 (a path on the target)
    python_version: str  # "3.8.10"
    modules: Dict[str, Dict[str, Any]]  # PROBE's answer
    packages: FrozenSet[str]  # Debian packages installed
    groups: FrozenSet[str]
    users: Dict[str, Set[str]]  # user -> groups it is a member of (primary group included)
    venv_system_site: Optional[bool]  # None: no venv at <prefix>/.venv
    venv_modules: Dict[str, Dict[str, Any]]  # PROBE's answer from that venv's python ({} when there is none)
    has_gdm: bool
    has_dconf: bool
    source: str  # the checkout on this machine
    source_digest: str  # of the files copied to the prefix
    deploy_digest: str  # of deploy/jetson/*
    units: List[Unit]

    def module(self, name: str) -> Dict[str, Any]:
        return self.modules.get(name, {"ok": False})

    def has_gpu_onnxruntime(self) -> bool:
        """An onnxruntime with a GPU provider (a Jetson onnxruntime-gpu wheel) in the system or the venv."""
        gpu = {"CUDAExecutionProvider", "TensorrtExecutionProvider"}
        return any(gpu & set(m.get("onnxruntime", {}).get("providers", [])) for m in (self.modules, self.venv_modules))


def at(root: str, path: str) -> str:
    """A target path (/etc/...) inside ``root``."""
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def detect(root: str = "/", prefix: str = "/opt/dabai", source: Optional[str] = None, python: Optional[str] = None,
           jetpack: Optional[int] = None) -> Facts:
    """Reads the facts; raises DeployError for a machine this installer does not support."""
    from kiosk.deploy.jetpack import SOURCE

    source = os.path.abspath(source or SOURCE)
    jp, l4t = _jetpack(root, jetpack)
    fake_root = root not in ("", "/")
    if python is None:
        python = "/usr/bin/python3" if not fake_root and os.path.exists("/usr/bin/python3") else sys.executable
    probe = _probe(python, root if fake_root else None)
    venv_cfg = at(root, os.path.join(prefix, ".venv", "pyvenv.cfg"))
    venv_system_site = None
    if os.path.isfile(venv_cfg):
        with open(venv_cfg, encoding="utf-8") as f:
            venv_system_site = any(line.replace(" ", "").lower() == "include-system-site-packages=true"
                                   for line in f.read().splitlines())
    venv_modules: Dict[str, Dict[str, Any]] = {}
    venv_python = os.path.join(prefix, ".venv", "bin", "python")
    if venv_system_site is not None and not fake_root and os.path.exists(venv_python):
        try:
            venv_modules = _probe(venv_python, None)["modules"]
        except DeployError:
            pass  # a broken venv: the plan installs into it again and the venv check judges it
    users, groups = read_accounts(root)
    return Facts(
        root=root, jetpack=jp, l4t=l4t, python=python, python_version=probe["python"], modules=probe["modules"],
        packages=frozenset(installed_packages(root)), groups=frozenset(groups), users=users,
        venv_system_site=venv_system_site, venv_modules=venv_modules,
        has_gdm=os.path.isdir(at(root, "/etc/gdm3")), has_dconf=os.path.exists(at(root, "/usr/bin/dconf")),
        source=source, source_digest=tree_digest(source),
        deploy_digest=tree_digest(os.path.join(source, "deploy", "jetson"), top_excludes=frozenset()),
        units=read_units(os.path.join(source, "systemd")),
    )


def _jetpack(root: str, override: Optional[int]):
    release = at(root, "/etc/nv_tegra_release")
    text = ""
    if os.path.isfile(release):
        with open(release, encoding="utf-8", errors="replace") as f:
            text = f.read()
    parsed = parse_l4t(text)
    supported = "JetPack 5 (L4T R35, Python 3.8) and JetPack 6 (L4T R36, Python 3.10)"
    if override is not None:
        if override not in JETPACKS:
            raise DeployError("--jetpack {}: this installer knows {}".format(override, supported))
        return JETPACKS[override], parsed[1] if parsed else ""
    if parsed is None:
        why = "{} not found".format(release) if not text else "{} does not say which L4T release this is".format(release)
        raise DeployError("not a Jetson ({}): this installer is for {}. On a Jetson image without the release "
                          "file, say which JetPack it is: --jetpack 5 or --jetpack 6".format(why, supported))
    jp = jetpack_of_l4t(parsed[0])
    if jp is None:
        raise DeployError("L4T R{} is not supported: this installer is for {} (JetPack 4 / R32 has Python 3.6, "
                          "which the kiosk does not run on); --jetpack 5|6 overrides at your own risk".format(
                              parsed[1], supported))
    return jp, parsed[1]


def _probe(python: str, fake_root: Optional[str]) -> Dict[str, Any]:
    cmd = [python]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if fake_root:
        # The tests' stand-in system modules, and nothing from the interpreter running the tests.
        cmd += ["-S", "-s"]
        dirs = sorted(glob.glob(os.path.join(fake_root, "usr/lib/python3*/dist-packages"))
                      + glob.glob(os.path.join(fake_root, "usr/local/lib/python3*/dist-packages")))
        env["PYTHONPATH"] = os.pathsep.join(dirs)
    try:
        out = subprocess.run(cmd + ["-c", PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeployError("cannot run the system python {}: {}".format(python, exc)) from None
    if out.returncode != 0:
        raise DeployError("the system python {} failed: {}".format(python, out.stderr.strip()[-500:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def installed_packages(root: str) -> Set[str]:
    """Debian packages whose dpkg status is "install ok installed" (architecture qualifiers dropped)."""
    path = at(root, "/var/lib/dpkg/status")
    found: Set[str] = set()
    if not os.path.isfile(path):
        return found
    with open(path, encoding="utf-8", errors="replace") as f:
        for para in f.read().split("\n\n"):
            fields = {}
            for line in para.splitlines():
                if ":" in line and not line.startswith(" "):
                    key, value = line.split(":", 1)
                    fields[key.strip()] = value.strip()
            if fields.get("Status") == "install ok installed" and fields.get("Package"):
                found.add(fields["Package"].split(":", 1)[0])
    return found


def _colon_rows(path: str) -> Iterator[List[str]]:
    """The fields of each named entry of an /etc/passwd- or /etc/group-style file (none when it is missing)."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(":")
            if len(parts) >= 4 and parts[0]:
                yield parts


def read_accounts(root: str) -> Tuple[Dict[str, Set[str]], Set[str]]:
    """({user: groups it belongs to}, {group names}) from <root>/etc/passwd and etc/group."""
    gid_names: Dict[str, str] = {}
    names: Set[str] = set()
    members: Dict[str, Set[str]] = {}
    for parts in _colon_rows(at(root, "/etc/group")):
        names.add(parts[0])
        gid_names.setdefault(parts[2], parts[0])
        for user in filter(None, parts[3].split(",")):
            members.setdefault(user, set()).add(parts[0])
    users: Dict[str, Set[str]] = {}
    for parts in _colon_rows(at(root, "/etc/passwd")):
        users[parts[0]] = set(members.get(parts[0], set()))
        if parts[3] in gid_names:
            users[parts[0]].add(gid_names[parts[3]])
    return users, names


def user_uid(root: str, user: str) -> Optional[int]:
    passwd = at(root, "/etc/passwd")
    if os.path.isfile(passwd):
        with open(passwd, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(":")
                if len(parts) >= 3 and parts[0] == user:
                    return int(parts[2])
    return None


def excluded(rel_dir: str, name: str, top_excludes: FrozenSet[str] = EXCLUDE_TOP) -> bool:
    """Whether ``name`` inside ``rel_dir`` (relative to the checkout, "" at its top) stays out of the copy."""
    if name in EXCLUDE_ANY or name.endswith((".egg-info", ".pyc")):
        return True
    return rel_dir in ("", ".") and name in top_excludes


def tree_files(top: str, top_excludes: FrozenSet[str] = EXCLUDE_TOP) -> List[str]:
    """Files under ``top`` (relative, sorted), without the excluded ones; [] when ``top`` is missing."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        dirnames[:] = sorted(d for d in dirnames if not excluded(rel, d, top_excludes))
        for name in filenames:
            if not excluded(rel, name, top_excludes):
                found.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(found)


def tree_digest(top: str, top_excludes: FrozenSet[str] = EXCLUDE_TOP) -> str:
    h = hashlib.sha256()
    for rel in tree_files(top, top_excludes):
        h.update(rel.encode("utf-8") + b"\0")
        with open(os.path.join(top, rel), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def read_units(folder: str) -> List[Unit]:
    """The unit files of the checkout's systemd/ folder (whatever is there), with their [Install] targets."""
    units = []
    if not os.path.isdir(folder):
        return units
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not (os.path.isfile(path) and name.endswith(UNIT_SUFFIXES)):
            continue
        with open(path, encoding="utf-8") as f:
            content = f.read()
        parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        targets: List[str] = []
        groups: List[str] = []
        try:
            parser.read_string(content)
            for key in ("WantedBy", "RequiredBy"):
                targets += parser.get("Install", key, fallback="").split()
            groups = parser.get("Service", "SupplementaryGroups", fallback="").split()
        except configparser.Error:
            pass  # systemd-analyze verify (CI) is the judge of the unit; we only need its targets and groups
        units.append(Unit(name, content, targets, groups))
    return units
