"""What the installer knows about each supported JetPack, and where its pip files are."""

from __future__ import annotations

import os
import re
from typing import Dict, NamedTuple, Optional, Tuple

# The checkout (the folder holding kiosk/ and deploy/): the installer runs from it and copies it.
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY_DIR = os.path.join("deploy", "jetson")  # relative to a checkout or to the prefix
NODEPS_FILE = "requirements-nodeps.txt"


class JetPack(NamedTuple):
    number: int
    l4t_major: int
    ubuntu: str
    python: str  # the system python3's major.minor
    glibc: Tuple[int, int]  # for the manylinux tags of `make jetson-deps`
    numpy_below: str  # checked inside the venv: TensorRT 8.5 needs < 1.24, JetPack's extensions < 2
    cuda: str

    @property
    def requirements(self) -> str:
        return os.path.join(DEPLOY_DIR, "requirements-jp{}.txt".format(self.number))

    @property
    def constraints(self) -> str:
        return os.path.join(DEPLOY_DIR, "constraints-jp{}.txt".format(self.number))


JETPACKS: Dict[int, JetPack] = {
    5: JetPack(5, 35, "20.04", "3.8", (2, 31), "1.24", "11.4"),
    6: JetPack(6, 36, "22.04", "3.10", (2, 35), "2", "12"),
}

_RELEASE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)")


def parse_l4t(text: str) -> Optional[Tuple[int, str]]:
    """``# R35 (release), REVISION: 4.1, GCID: ...`` -> (35, "35.4.1"); None when it is not such a line."""
    m = _RELEASE.search(text)
    if not m:
        return None
    return int(m.group(1)), "{}.{}".format(m.group(1), m.group(2).rstrip("."))


def jetpack_of_l4t(major: int) -> Optional[JetPack]:
    for jp in JETPACKS.values():
        if jp.l4t_major == major:
            return jp
    return None


def version_tuple(text: str) -> Tuple[int, ...]:
    """"1.23.5" -> (1, 23, 5); stops at the first part that is not a number ("2.0.0rc1" -> (2, 0))."""
    parts = []
    for p in text.split("."):
        m = re.match(r"\d+", p)
        if not m:
            break
        parts.append(int(m.group(0)))
        if m.group(0) != p:
            break
    return tuple(parts)


def read_pins(path: str) -> Dict[str, str]:
    """``name==version`` lines of a constraints file, by lower-case, dash-normalised name."""
    pins = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[normalize(name)] = version.strip()
    return pins


def read_requirement_names(path: str) -> Dict[str, str]:
    """Requirement names of a plain requirements file (no options, no -r), normalised -> as written."""
    names = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name = re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]
                names[normalize(name)] = name
    return names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
