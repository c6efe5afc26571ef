"""systemd/dabai-kiosk.service: ``systemd-analyze verify`` offline (no systemd running here), and what the
unit must say (issue 11: notify + watchdog, gate close around every run, bounded restarts, hardening)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "dabai-kiosk.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")

# Every directive the unit may use, each present in systemd 245 (JetPack 5, Ubuntu 20.04; JetPack 6 has 249).
# A directive from a later systemd (RestartSteps=, 254; OpenFile=, 253) is ignored there with a warning.
SYSTEMD_245 = {
    "Unit": {"Description", "Documentation", "After", "Wants", "Requires", "StartLimitIntervalSec",
             "StartLimitBurst"},
    "Service": {"Type", "NotifyAccess", "User", "Group", "SupplementaryGroups", "WorkingDirectory", "Environment",
                "ExecStartPre", "ExecStart", "ExecStopPost", "Restart", "RestartSec", "TimeoutStartSec",
                "TimeoutStopSec", "WatchdogSec", "StateDirectory", "StateDirectoryMode", "UMask", "NoNewPrivileges",
                "CapabilityBoundingSet", "RestrictSUIDSGID", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "BindReadOnlyPaths", "BindPaths", "ReadWritePaths", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectKernelLogs", "ProtectControlGroups", "ProtectHostname", "ProtectClock",
                "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "LockPersonality",
                "SystemCallArchitectures", "DevicePolicy", "DeviceAllow"},
    "Install": {"WantedBy"},
}


def parse_unit(text: str) -> List[Tuple[str, str, str]]:
    """(section, key, value) for each assignment, in order (systemd's own syntax: no continuation lines here)."""
    section, out = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(entries: List[Tuple[str, str, str]], key: str, section: str = "Service") -> List[str]:
    return [v for s, k, v in entries if s == section and k == key]


def one(entries: List[Tuple[str, str, str]], key: str, section: str = "Service") -> str:
    found = values(entries, key, section)
    assert len(found) == 1, "{}= in [{}]: {}".format(key, section, found)
    return found[0]


def offline_root(tmp_path: Path, unit_text: str) -> Path:
    """A root for ``systemd-analyze --root``: the unit in /etc/systemd/system, a stub executable at every
    absolute Exec path it names, and stub targets for the default dependencies."""
    root = tmp_path / "root"
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / UNIT.name).write_text(unit_text, encoding="utf-8")
    for _section, key, value in parse_unit(unit_text):
        if key.startswith("Exec"):
            path = value.lstrip("-@:+!").split()[0]
            stub = root / path.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
            stub.chmod(0o755)
    system = root / "usr" / "lib" / "systemd" / "system"
    system.mkdir(parents=True)
    for target in ("sysinit.target", "basic.target", "shutdown.target", "multi-user.target"):
        (system / target).write_text("[Unit]\nDescription=stub\n", encoding="utf-8")
    return root


def verify(tmp_path: Path, unit_text: str) -> Tuple[int, str]:
    root = offline_root(tmp_path, unit_text)
    proc = subprocess.run([str(ANALYZE), "verify", "--root", str(root), "/etc/systemd/system/" + UNIT.name],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


@needs_analyze
def test_the_unit_verifies_without_a_warning(tmp_path):
    code, output = verify(tmp_path, UNIT.read_text(encoding="utf-8"))
    assert code == 0 and output == "", output


@needs_analyze
def test_verify_catches_a_misspelt_key_and_a_missing_program(tmp_path):
    """The check above can fail: systemd-analyze names an unknown directive, and an Exec path that is not there."""
    text = UNIT.read_text(encoding="utf-8")
    code, output = verify(tmp_path / "a", text.replace("WatchdogSec=", "WatchdogSecs="))
    assert "Unknown key 'WatchdogSecs'" in output
    root = offline_root(tmp_path / "b", text)
    (root / "opt" / "dabai" / ".venv" / "bin" / "dabai-kiosk").unlink()
    proc = subprocess.run([str(ANALYZE), "verify", "--root", str(root), "/etc/systemd/system/" + UNIT.name],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "is not executable" in proc.stderr


@needs_analyze
def test_exposure_is_low(tmp_path):
    """``systemd-analyze security`` offline (systemd 250+): the hardening adds up to an exposure of at most 4
    ("OK"; an unhardened service is 9.6, "UNSAFE")."""
    root = offline_root(tmp_path, UNIT.read_text(encoding="utf-8"))
    proc = subprocess.run([str(ANALYZE), "security", "--offline=yes", "--root", str(root),
                           "/etc/systemd/system/" + UNIT.name], capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    if found is None:
        pytest.skip("this systemd-analyze has no offline security check: {}".format(proc.stderr.strip()[:200]))
    assert float(found.group(1)) <= 4.0, proc.stdout


def test_only_directives_systemd_245_knows():
    for section, key, _ in parse_unit(UNIT.read_text(encoding="utf-8")):
        assert key in SYSTEMD_245.get(section, set()), "[{}] {}= is not known to be in systemd 245".format(section, key)


def test_the_unit_says_what_issue_11_asks():
    entries = parse_unit(UNIT.read_text(encoding="utf-8"))
    kiosk = "/opt/dabai/.venv/bin/dabai-kiosk"
    assert one(entries, "Type") == "notify" and one(entries, "NotifyAccess") == "main"
    watchdog_s = int(one(entries, "WatchdogSec"))
    assert 10 < watchdog_s <= 60  # longer than the decider's 10 s stall limit, short enough to matter at a gate
    assert one(entries, "ExecStart") == kiosk + " run --display-wait 90"
    assert one(entries, "ExecStartPre") == kiosk + " gate close"  # no "-": a relay that will not close fails
    assert one(entries, "ExecStopPost") == kiosk + " gate close"
    assert one(entries, "Restart") == "always"
    assert int(one(entries, "StartLimitBurst", "Unit")) >= 3 and one(entries, "StartLimitIntervalSec", "Unit")
    assert not values(entries, "StartLimitBurst") and not values(entries, "StartLimitIntervalSec")  # [Unit] only
    assert one(entries, "User") == "kiosk"
    env: Dict[str, str] = dict(v.split("=", 1) for v in values(entries, "Environment"))
    assert env["DABAI_HOME"] == "/var/lib/dabai" and env["DISPLAY"] == ":0"
    assert "XAUTHORITY" not in env and "XDG_RUNTIME_DIR" not in env  # found by the kiosk (kiosk/runtime/display.py)
    assert one(entries, "NoNewPrivileges") == "yes" and one(entries, "ProtectSystem") == "strict"
    assert one(entries, "StateDirectory") == "dabai"  # /var/lib/dabai: writable under ProtectSystem=strict
    assert one(entries, "PrivateTmp") == "yes" and one(entries, "BindReadOnlyPaths") == "-/tmp/.X11-unix"
    assert one(entries, "ProtectHome") == "read-only"  # the X cookie under /run/user stays readable
    assert one(entries, "DevicePolicy") == "closed"
    allowed = values(entries, "DeviceAllow")
    for group in ("char-video4linux", "char-alsa", "char-gpiochip", "char-ttyS", "char-ttyUSB", "char-ttyACM",
                  "/dev/nvmap", "/dev/nvhost-ctrl-gpu", "/dev/nvgpu/igpu0/ctrl"):
        assert group + " rw" in allowed
    assert not values(entries, "MemoryDenyWriteExecute")  # CUDA/TensorRT/ORT JIT and libffi need W+X pages
    assert one(entries, "WantedBy", "Install") == "multi-user.target"  # headless boots start it too
