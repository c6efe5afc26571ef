"""The Jetson installer (kiosk/deploy) against fake L4T roots: plans for JetPack 5 and 6, dry run, refusal,
idempotence, the venv check, and the pip files of deploy/jetson/."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from typing import Dict, List

import pytest

from kiosk.deploy import plan as P
from kiosk.deploy.__main__ import main, setup_requirements
from kiosk.deploy.execute import FAILED, OK, execute
from kiosk.deploy.facts import DeployError, detect, read_units
from kiosk.deploy.jetpack import JETPACKS, read_pins, read_requirement_names, version_tuple
from kiosk.deploy.resolve import check_report, platforms
from kiosk.deploy.verify import check_venv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASES = {5: "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1\n",
            6: "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6\n"}
BASE_PACKAGES = ("bash", "python3", "nvidia-l4t-core", "python3-libnvinfer", "nvidia-opencv", "libzbar0", "fontconfig")
JETPACK_PROVIDED = {"opencv-python-headless", "onnxruntime"}  # setup.py's, which the Jetson venv must not install


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def system_modules(site: str, gstreamer: bool = True, numpy: str = "1.23.5", onnxruntime: bool = False,
                   cuda_ok: bool = True) -> None:
    """Stand-ins for what JetPack (and apt) put in the system python's dist-packages."""
    _write(os.path.join(site, "tensorrt", "__init__.py"), "__version__ = '8.5.2.2'\n")
    _write(os.path.join(site, "cv2", "__init__.py"),
           "__version__ = '4.5.4'\ndef getBuildInformation():\n"
           "    return '  Video I/O:\\n    GStreamer:                   {}\\n'\n".format(
               "YES (1.16.3)" if gstreamer else "NO"))
    _write(os.path.join(site, "PyQt5", "__init__.py"), "")
    _write(os.path.join(site, "PyQt5", "QtCore.py"), "QT_VERSION_STR = '5.12.8'\n")
    _write(os.path.join(site, "numpy", "__init__.py"), "__version__ = {!r}\n".format(numpy))
    _write(os.path.join(site, "cuda", "__init__.py"), "")
    _write(os.path.join(site, "cuda", "cudart.py"),
           "class cudaError_t:\n    cudaSuccess = 0\n    cudaErrorInsufficientDriver = 35\n"
           "def cudaGetDeviceCount():\n    return ({}, 1)\n".format(0 if cuda_ok else 35))
    if onnxruntime:
        _write(os.path.join(site, "onnxruntime", "__init__.py"),
               "__version__ = '1.16.0'\ndef get_available_providers():\n"
               "    return ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']\n")


def make_root(tmp: str, jetpack: int = 5, gstreamer: bool = True, onnxruntime: bool = False,
              release: str = "") -> str:
    root = os.path.join(tmp, "root{}".format(jetpack))
    _write(os.path.join(root, "etc", "nv_tegra_release"), release or RELEASES[jetpack])
    _write(os.path.join(root, "var", "lib", "dpkg", "status"), "".join(
        "Package: {}\nStatus: install ok installed\nArchitecture: arm64\n\n".format(p) for p in BASE_PACKAGES)
        + "Package: espeak-ng\nStatus: deinstall ok config-files\n\n")
    groups = ["root:x:0:", "audio:x:29:pulse", "video:x:44:", "dialout:x:20:"]
    if jetpack == 6:
        groups.append("render:x:109:")
    _write(os.path.join(root, "etc", "group"), "\n".join(groups) + "\n")
    _write(os.path.join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/bash\n")
    _write(os.path.join(root, "etc", "gdm3", "custom.conf"),
           "# GDM configuration storage\n\n[daemon]\n# AutomaticLoginEnable = true\nTimedLoginDelay=10\n\n"
           "[security]\n\n[debug]\n# Enable=true\n")
    _write(os.path.join(root, "usr", "bin", "dconf"), "")
    system_modules(os.path.join(root, "usr", "lib", "python3", "dist-packages"), gstreamer=gstreamer,
                   onnxruntime=onnxruntime, numpy="1.17.4")
    return root


def make_source(tmp: str) -> str:
    """A small checkout: the real deploy/jetson and systemd/ files, a setup.py, a module, and things never copied."""
    src = os.path.join(tmp, "checkout")
    shutil.copytree(os.path.join(REPO, "deploy"), os.path.join(src, "deploy"))
    shutil.copytree(os.path.join(REPO, "systemd"), os.path.join(src, "systemd"))
    shutil.copy(os.path.join(REPO, "setup.py"), src)
    _write(os.path.join(src, "kiosk", "__init__.py"), "")
    _write(os.path.join(src, ".venv", "bin", "python"), "")
    _write(os.path.join(src, "out", "demo", "report.json"), "{}")
    _write(os.path.join(src, "kiosk", "__pycache__", "x.cpython-38.pyc"), "")
    return src


def facts_for(tmp: str, jetpack: int, **kw):
    root = make_root(tmp, jetpack, **kw)
    facts = detect(root, source=make_source(tmp))
    return facts._replace(python_version=JETPACKS[jetpack].python + ".10")  # the tests' python is not 3.8


def pip_commands(steps) -> List[List[str]]:
    return [c for c in P.commands(steps) if c[1:4] == ["-m", "pip", "install"]]


# ---- detection ----

def test_detect_reads_the_release_the_packages_and_the_system_modules(tmp_path):
    root = make_root(str(tmp_path), 5, onnxruntime=True)
    facts = detect(root, source=make_source(str(tmp_path)))
    assert facts.jetpack.number == 5 and facts.l4t == "35.4.1"
    assert "python3-libnvinfer" in facts.packages and "espeak-ng" not in facts.packages  # config-files only
    assert facts.module("tensorrt")["version"] == "8.5.2.2"
    assert facts.module("cv2")["gstreamer"] is True
    assert facts.module("onnxruntime")["providers"][0] == "TensorrtExecutionProvider"
    assert not facts.module("jetson_utils")["ok"]
    assert facts.module("numpy")["version"] == "1.17.4"  # the stand-in, not the numpy running these tests
    assert facts.groups >= {"video", "audio", "dialout"} and "gpio" not in facts.groups
    assert facts.venv_system_site is None and facts.has_gdm and facts.has_dconf
    assert [u.name for u in facts.units] == ["dabai-kiosk.service"]
    assert detect(make_root(str(tmp_path), 6), source=facts.source).jetpack.number == 6


@pytest.mark.parametrize("release, why", [(None, "not found"), ("garbage\n", "does not say"),
                                          (RELEASES[5].replace("R35", "R32"), "R32")])
def test_a_root_that_is_not_jetpack_5_or_6_is_refused_with_a_clear_message(tmp_path, capsys, release, why):
    root = make_root(str(tmp_path), 5)
    if release is None:
        os.unlink(os.path.join(root, "etc", "nv_tegra_release"))
    else:
        _write(os.path.join(root, "etc", "nv_tegra_release"), release)
    with pytest.raises(DeployError, match=why):
        detect(root, source=make_source(str(tmp_path)))
    assert main(["install", "--dry-run", "--root", root, "--source", os.path.join(str(tmp_path), "checkout")]) == 1
    err = capsys.readouterr().err
    assert why in err and "JetPack 5 (L4T R35" in err and "JetPack 6 (L4T R36" in err
    if release is None:
        assert "not a Jetson" in err and "--jetpack 5" in err
        # the override installs on an image without the release file
        assert detect(root, source=os.path.join(str(tmp_path), "checkout"), jetpack=6).jetpack.number == 6


# ---- the plan of each JetPack ----

@pytest.mark.parametrize("jetpack", [5, 6])
def test_plan_uses_jetpacks_own_modules_and_the_pinned_runtime_requirements(tmp_path, jetpack):
    facts = facts_for(str(tmp_path), jetpack)
    steps = P.plan(facts, P.Options())
    venv = [c for c in P.commands(steps) if c[1:3] == ["-m", "venv"]]
    assert venv == [[facts.python, "-m", "venv", "--system-site-packages", "/opt/dabai/.venv"]]
    pips = pip_commands(steps)
    assert all(c[0] == "/opt/dabai/.venv/bin/python" for c in pips)
    kiosk = [c for c in pips if "/opt/dabai" in c]
    assert kiosk and "--no-deps" in kiosk[0]  # setup.py's opencv-python-headless / onnxruntime never installed
    runtime = [c for c in pips if "-r" in c and "--no-deps" not in c][0]
    assert runtime[runtime.index("-r") + 1] == "/opt/dabai/deploy/jetson/requirements-jp{}.txt".format(jetpack)
    assert runtime[runtime.index("-c") + 1] == "/opt/dabai/deploy/jetson/constraints-jp{}.txt".format(jetpack)
    assert "cuda-python" in runtime and "onnxruntime" in runtime  # no onnxruntime on this system: the CPU one
    assert all("-c" in c for c in pips)  # every pip install is constrained
    words = " ".join(" ".join(c) for c in pips).lower()
    for never in ("opencv", "pyqt5", "tensorrt", "[dev", "pytest", "ruff"):
        assert never not in words
    names = [s.name for s in steps]
    order = [next(i for i, n in enumerate(names) if n.startswith(prefix)) for prefix in
             ("detect", "JetPack's tensorrt", "Debian packages", "copy the checkout", "venv", "pip, setuptools",
              "the kiosk package", "runtime requirements", "check the venv", "groups ", "user kiosk", "udev",
              "data home", "systemd units", "enable", "GDM", "X never blanks", "GNOME never blanks",
              "TensorRT engines", "dabai-kiosk doctor")]
    assert order == sorted(order) and names[-1] == "dabai-kiosk doctor"


def test_the_constraints_hold_each_jetpacks_bounds_and_cuda_bindings():
    jp5 = read_pins(os.path.join(REPO, JETPACKS[5].constraints))
    jp6 = read_pins(os.path.join(REPO, JETPACKS[6].constraints))
    assert version_tuple(jp5["numpy"]) < (1, 24) and JETPACKS[5].numpy_below == "1.24"
    assert version_tuple(jp6["numpy"]) < (2,) and JETPACKS[6].numpy_below == "2"
    assert jp5["cuda-python"].startswith("11.") and jp6["cuda-python"].startswith("12.")
    assert jp5["cuda-python"] == "11.8.2" and jp6["cuda-python"] == "12.2.1"  # the newest with cp38 / the CUDA 12.2 floor


@pytest.mark.parametrize("jetpack", [5, 6])
def test_requirements_are_setup_pys_runtime_ones_minus_what_jetpack_gives(jetpack):
    reqs = read_requirement_names(os.path.join(REPO, JETPACKS[jetpack].requirements))
    pins = read_pins(os.path.join(REPO, JETPACKS[jetpack].constraints))
    setup = setup_requirements(os.path.join(REPO, "setup.py"))
    wanted = set(read_requirement_names_of(setup[""] + setup["audio"] + setup["serial"] + setup["fleet"])) - JETPACK_PROVIDED
    assert wanted <= set(reqs), "setup.py needs {} on the Jetson too".format(wanted - set(reqs))
    assert "jetson-gpio" in reqs
    dev_only = set(read_requirement_names_of(setup["dev"] + setup["train"] + setup["ui"])) - wanted
    assert not dev_only & set(reqs), "dev/train/ui extras are not installed on the kiosk"
    assert not {"opencv-python", "opencv-python-headless", "pyqt5", "onnxruntime", "onnxruntime-gpu"} & set(reqs)
    assert set(reqs) <= set(pins)  # every requirement is pinned


def read_requirement_names_of(lines: List[str]) -> Dict[str, str]:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines))
    try:
        return read_requirement_names(f.name)
    finally:
        os.unlink(f.name)


def test_an_onnxruntime_the_system_has_is_kept_and_pycuda_is_built_with_nvcc(tmp_path):
    facts = facts_for(str(tmp_path), 5, onnxruntime=True)
    steps = P.plan(facts, P.Options(cuda="pycuda"))
    runtime = [op for s in steps if s.name.startswith("runtime requirements") for op in s.ops if isinstance(op, P.Run)]
    assert "onnxruntime" not in runtime[0].argv and "cuda-python" not in runtime[0].argv
    pycuda = [op for op in runtime if "pycuda" in op.argv][0]
    assert pycuda.env["PATH"].startswith("/usr/local/cuda/bin:") and "-c" in pycuda.argv
    assert "python3-dev" in [s for s in steps if s.name == "Debian packages"][0].done[0].packages
    # an onnxruntime-gpu someone put into the venv is not overwritten by the CPU wheel either
    facts = facts_for(str(tmp_path / "again"), 6)
    gpu = {"onnxruntime": {"ok": True, "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}}
    runtime = [c for c in pip_commands(P.plan(facts._replace(venv_modules=gpu), P.Options())) if "cuda-python" in c][0]
    assert "onnxruntime" not in runtime
    runtime = [c for c in pip_commands(P.plan(facts, P.Options())) if "cuda-python" in c][0]
    assert "onnxruntime" in runtime


@pytest.mark.parametrize("jetpack", [5, 6])
def test_plan_makes_the_user_the_home_the_unit_the_display_and_ends_with_engines_and_doctor(tmp_path, jetpack):
    facts = facts_for(str(tmp_path), jetpack)
    steps = P.plan(facts, P.Options())
    cmds = P.commands(steps)
    assert ["groupadd", "--system", "gpio"] in cmds
    useradd = [c for c in cmds if c[0] == "useradd"][0]
    groups = useradd[useradd.index("--groups") + 1].split(",")
    assert groups[:4] == ["video", "audio", "gpio", "dialout"] and useradd[-1] == "kiosk" and "--create-home" in useradd
    assert ("render" in groups) == (jetpack == 6 or "render" in facts.units[0].groups)  # render: where it exists
    for group in facts.units[0].groups:  # a group the unit names must exist, or systemd refuses to start it
        assert group in groups and (group in facts.groups or ["groupadd", "--system", group] in cmds)
    # the unit names a group the system lacks: it is created
    lacking = facts._replace(units=[facts.units[0]._replace(groups=["video", "i2c"])])
    assert ["groupadd", "--system", "i2c"] in P.commands(P.plan(lacking, P.Options()))
    assert ["install", "-d", "-o", "kiosk", "-g", "kiosk", "-m", "0750", "/var/lib/dabai"] in cmds
    writes = {op.path: op for s in steps for op in s.ops if isinstance(op, P.Write)}
    with open(os.path.join(REPO, "systemd", "dabai-kiosk.service"), encoding="utf-8") as f:
        assert writes["/etc/systemd/system/dabai-kiosk.service"].content == f.read()
    assert cmds.index(["systemctl", "daemon-reload"]) < cmds.index(["systemctl", "enable", "dabai-kiosk.service"])
    gdm = [op for s in steps for op in s.ops if isinstance(op, P.IniSet)][0]
    assert gdm.path == "/etc/gdm3/custom.conf" and gdm.values["AutomaticLogin"] == "kiosk"
    noblank = writes[P.XORG_SNIPPET].content
    for option in ("BlankTime", "StandbyTime", "SuspendTime", "OffTime"):
        assert 'Option "{}" "0"'.format(option) in noblank
    assert 'Option "DPMS" "Disable"' in noblank and "idle-delay=uint32 0" in writes[P.DCONF_KEYFILE].content
    run_as = ["runuser", "-u", "kiosk", "--", "env", "DABAI_HOME=/var/lib/dabai"]
    assert cmds[-2:] == [run_as + ["/opt/dabai/.venv/bin/dabai-kiosk", "engine", "build"],
                         run_as + ["/opt/dabai/.venv/bin/dabai-kiosk", "doctor"]]
    assert not steps[-1].fatal and not steps[-2].fatal  # reported, not fatal
    verify = [c for c in cmds if "kiosk.deploy.verify" in c][0]
    assert verify[verify.index("--jetpack") + 1] == str(jetpack)
    headless = P.commands(P.plan(facts, P.Options(display=False)))
    assert ["dconf", "update"] in cmds and ["dconf", "update"] not in headless


def test_headless_leaves_the_display_alone_and_models_come_from_a_folder(tmp_path):
    facts = facts_for(str(tmp_path), 5)
    steps = P.plan(facts, P.Options(display=False, models_dir="/media/usb/models"))
    names = [s.name for s in steps]
    assert not [n for n in names if "GDM" in n or "blanks" in n]
    fetch = [c for c in P.commands(steps) if "fetch" in c][0]
    assert fetch[-3:] == ["fetch", "--from", "/media/usb/models"]


def test_jetson_utils_is_built_from_a_local_checkout_before_the_venv_check(tmp_path):
    facts = facts_for(str(tmp_path), 6)
    steps = P.plan(facts, P.Options(jetson_utils_src="/home/dev/jetson-utils"))
    cmds = P.commands(steps)
    assert ["cmake", "--install", "/home/dev/jetson-utils/build"] in cmds
    assert "cmake" in [s for s in steps if s.name == "Debian packages"][0].ops[1].argv
    verify = [c for c in cmds if "kiosk.deploy.verify" in c][0]
    assert "--jetson-utils" in verify
    assert cmds.index(["ldconfig"]) < cmds.index(verify)


# ---- executing it ----

class FakeSystem:
    """A recording runner that also does what each command would do to the fake root, so that the steps'
    done checks see the results (a second run must find everything done)."""

    def __init__(self, root: str):
        self.root = root
        self.calls: List[List[str]] = []
        self.gid = 1000

    def path(self, p: str) -> str:
        return os.path.join(self.root, p.lstrip("/"))

    def append(self, p: str, text: str) -> None:
        with open(self.path(p), "a", encoding="utf-8") as f:
            f.write(text)

    def __call__(self, argv: List[str], env: Dict[str, str]) -> int:
        self.calls.append(list(argv))
        cmd = argv[0]
        if cmd == "apt-get" and argv[1] == "install":
            self.append("/var/lib/dpkg/status", "".join(
                "Package: {}\nStatus: install ok installed\n\n".format(p) for p in argv[2:] if not p.startswith("-")))
        elif argv[1:3] == ["-m", "venv"]:
            _write(self.path(argv[-1] + "/bin/python"), "")
            _write(self.path(argv[-1] + "/pyvenv.cfg"), "home = /usr/bin\ninclude-system-site-packages = true\n")
        elif argv[1:4] == ["-m", "pip", "install"]:
            if "-r" in argv and "--no-deps" not in argv:  # Jetson.GPIO brings its udev rule
                _write(self.path("/opt/dabai/.venv/lib/python3.8/site-packages/Jetson/GPIO/99-gpio.rules"), "rule\n")
        elif cmd == "groupadd":
            self.gid -= 1
            self.append("/etc/group", "{}:x:{}:\n".format(argv[-1], self.gid))
        elif cmd == "useradd":
            user, groups = argv[-1], argv[argv.index("--groups") + 1].split(",")
            self.append("/etc/passwd", "{}:x:{}:1001::/home/{}:/bin/bash\n".format(user, os.getuid(), user))
            with open(self.path("/etc/group"), encoding="utf-8") as f:
                lines = f.read().splitlines()
            lines = [ln + ("," if not ln.endswith(":") else "") + user if ln.split(":")[0] in groups else ln
                     for ln in lines] + ["{}:x:1001:".format(user)]
            _write(self.path("/etc/group"), "\n".join(lines) + "\n")
        elif cmd == "install":
            os.makedirs(self.path(argv[-1]), exist_ok=True)
            os.chmod(self.path(argv[-1]), int(argv[argv.index("-m") + 1], 8))
        elif argv[:2] == ["systemctl", "enable"]:  # a link in each [Install] target's .wants
            unit = [u for u in read_units(self.path("/etc/systemd/system")) if u.name == argv[2]][0]
            for target in unit.wanted_by:
                link = self.path("/etc/systemd/system/{}.wants/{}".format(target, argv[2]))
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink("/etc/systemd/system/" + argv[2], link)
        elif argv == ["dconf", "update"]:
            _write(self.path("/etc/dconf/db/local"), "gvdb")
        elif cmd not in ("apt-get", "rm", "runuser", "udevadm", "systemctl") and "kiosk.deploy.verify" not in argv:
            raise AssertionError("unexpected command {}".format(argv))
        return 0


def snapshot(root: str) -> Dict[str, bytes]:
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                found[os.path.relpath(path, root)] = os.readlink(path).encode()
                continue
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def test_a_second_install_finds_everything_done_and_only_runs_the_checks(tmp_path):
    facts = facts_for(str(tmp_path), 5)
    system = FakeSystem(facts.root)
    out = io.StringIO()
    assert execute(P.plan(facts, P.Options()), facts.root, system, out=out) == OK, out.getvalue()
    first = system.calls
    assert ["groupadd", "--system", "gpio"] in first and any(c[0] == "useradd" for c in first)
    copied = os.path.join(facts.root, "opt", "dabai")
    assert os.path.isfile(os.path.join(copied, "deploy", "jetson", "constraints-jp5.txt"))
    assert not os.path.exists(os.path.join(copied, ".venv", "bin", "python")) or os.path.isfile(
        os.path.join(copied, ".venv", "pyvenv.cfg"))  # the checkout's own .venv was not copied
    assert not os.path.exists(os.path.join(copied, "out")) and not os.path.exists(os.path.join(copied, "kiosk", "__pycache__"))
    with open(os.path.join(facts.root, "etc", "gdm3", "custom.conf"), encoding="utf-8") as f:
        gdm = f.read()
    assert "AutomaticLogin=kiosk" in gdm and "TimedLoginDelay=10" in gdm and "[security]" in gdm
    assert "# AutomaticLoginEnable = true" in gdm  # comments kept

    facts2 = detect(facts.root, source=facts.source)._replace(python_version="3.8.10")
    assert facts2.venv_system_site is True and "kiosk" in facts2.users
    system2 = FakeSystem(facts.root)
    out2 = io.StringIO()
    before = snapshot(facts.root)
    assert execute(P.plan(facts2, P.Options()), facts.root, system2, out=out2) == OK, out2.getvalue()
    checks = [c for c in system2.calls]
    assert len(checks) == 3, checks  # the venv check, engine build, doctor: nothing else ran
    assert "kiosk.deploy.verify" in checks[0] and checks[1][-2:] == ["engine", "build"] and checks[2][-1] == "doctor"
    assert snapshot(facts.root) == before
    assert out2.getvalue().count("(done already)") == len(P.plan(facts2, P.Options())) - 5  # 5 always-run steps


def test_dry_run_prints_every_step_and_executes_none(tmp_path, capsys):
    root = make_root(str(tmp_path), 6)
    src = make_source(str(tmp_path))
    before = snapshot(root)
    assert main(["install", "--dry-run", "--root", root, "--source", src]) == 0
    printed = capsys.readouterr().out
    steps = P.plan(detect(root, source=src), P.Options())
    for n, step in enumerate(steps, 1):
        assert "[{:>2}/{}] {}".format(n, len(steps), step.name) in printed
    for cmd in ("apt-get install -y --no-install-recommends", "-m venv --system-site-packages /opt/dabai/.venv",
                "useradd", "systemctl enable dabai-kiosk.service", "write /etc/X11/xorg.conf.d/", "engine build",
                "dabai-kiosk doctor"):
        assert cmd in printed
    assert printed.rstrip().endswith("nothing executed")
    assert snapshot(root) == before
    recorded: List[List[str]] = []
    assert execute(steps, root, lambda argv, env: recorded.append(argv) or 0, dry_run=True, out=io.StringIO()) == OK
    assert recorded == [] and snapshot(root) == before


def test_install_stops_before_touching_the_system_when_cv2_has_no_gstreamer(tmp_path):
    facts = facts_for(str(tmp_path), 5, gstreamer=False)
    system = FakeSystem(facts.root)
    out = io.StringIO()
    assert execute(P.plan(facts, P.Options()), facts.root, system, out=out) == FAILED
    assert system.calls == []
    assert "built without GStreamer" in out.getvalue() and "nvidia-opencv" in out.getvalue()
    assert "install stopped at step 2" in out.getvalue()


def test_a_failing_command_stops_the_install_and_engines_or_doctor_only_warn(tmp_path):
    facts = facts_for(str(tmp_path), 5)
    system = FakeSystem(facts.root)

    def apt_fails(argv, env):
        return 100 if argv[:2] == ["apt-get", "install"] else system(argv, env)

    out = io.StringIO()
    assert execute(P.plan(facts, P.Options()), facts.root, apt_fails, out=out) == FAILED
    assert "exited with status 100" in out.getvalue() and not any(c[0] == "useradd" for c in system.calls)

    def doctor_fails(argv, env):
        return 1 if argv[-1] == "doctor" else system(argv, env)

    out = io.StringIO()
    assert execute(P.plan(facts, P.Options()), facts.root, doctor_fails, out=out) == 3
    assert "warning: dabai-kiosk doctor" in out.getvalue()


def test_gdm_edit_is_idempotent_and_keeps_other_keys(tmp_path):
    from kiosk.deploy.execute import _ini_set

    path = str(tmp_path / "custom.conf")
    _write(path, "[daemon]\nWaylandEnable=true\nAutomaticLogin=someone\nAutomaticLogin=twice\n[xdmcp]\nEnable=false\n")
    values = {"AutomaticLoginEnable": "true", "AutomaticLogin": "kiosk", "WaylandEnable": "false"}
    _ini_set(path, "daemon", values)
    with open(path, encoding="utf-8") as f:
        once = f.read()
    _ini_set(path, "daemon", values)
    with open(path, encoding="utf-8") as f:
        assert f.read() == once
    assert once.count("AutomaticLogin=") == 1 and "[xdmcp]\nEnable=false" in once
    assert once.index("AutomaticLoginEnable=true") < once.index("[xdmcp]")
    other = str(tmp_path / "none.conf")
    _ini_set(other, "daemon", values)
    with open(other, encoding="utf-8") as f:
        assert f.read().startswith("[daemon]\n")


# ---- the check inside the venv ----

def run_verify(site: str, jetpack: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([site, REPO]))
    return subprocess.run([sys.executable, "-S", "-s", "-m", "kiosk.deploy.verify", "--jetpack", str(jetpack)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)


def test_verify_passes_with_jetpacks_modules_and_names_each_part(tmp_path):
    site = str(tmp_path / "site")
    system_modules(site, onnxruntime=True)
    done = run_verify(site, 5)
    assert done.returncode == 0, done.stdout
    for part in ("tensorrt 8.5.2.2", "cuda.cudart (1 device)", "GStreamer yes", "numpy 1.23.5", "PyQt5 5.12.8",
                 "onnxruntime 1.16.0"):
        assert part in done.stdout


@pytest.mark.parametrize("jetpack, kw, wrong", [
    (5, {"gstreamer": False}, "has no GStreamer"),
    (5, {"numpy": "1.24.4"}, "numpy 1.24.4 is not < 1.24 as JetPack 5 needs (TensorRT 8.5 uses np.bool)"),
    (6, {"numpy": "2.0.1"}, "numpy 2.0.1 is not < 2"),
    (5, {"cuda_ok": False}, "no CUDA bindings reach the GPU"),
    (5, {"onnxruntime": False}, "onnxruntime cannot be imported"),
])
def test_verify_fails_clearly_naming_what_is_wrong(tmp_path, jetpack, kw, wrong):
    site = str(tmp_path / "site")
    kw.setdefault("onnxruntime", True)
    system_modules(site, **kw)
    done = run_verify(site, jetpack)
    assert done.returncode == 1 and "WRONG: " in done.stdout and wrong in done.stdout, done.stdout


def test_verify_numpy_1_24_is_fine_on_jetpack_6_and_a_cv2_inside_the_venv_is_refused(tmp_path):
    site = str(tmp_path / "site")
    system_modules(site, numpy="1.24.4", onnxruntime=True)
    assert run_verify(site, 6).returncode == 0
    saved = dict(sys.modules)  # the stand-ins replace the real numpy, cv2, PyQt5 here only: later tests need them
    sys.path.insert(0, site)
    try:
        for name in ("cv2", "numpy", "tensorrt", "onnxruntime", "PyQt5", "PyQt5.QtCore", "cuda", "cuda.cudart"):
            sys.modules.pop(name, None)
        import importlib

        found, problems = check_venv(6, imp=importlib.import_module, prefix=site)
    finally:
        sys.path.remove(site)
        sys.modules.clear()
        sys.modules.update(saved)
    assert any("cv2 comes from the venv" in p for p in problems)
    assert any("PyQt5 comes from the venv" in p for p in problems)


# ---- make jetson-deps ----

def test_resolve_names_every_glibc_tag_up_to_the_jetpacks_and_judges_the_report():
    five = platforms(JETPACKS[5])
    assert "manylinux_2_17_aarch64" in five and "manylinux_2_31_aarch64" in five
    assert "manylinux_2_32_aarch64" not in five and "manylinux_2_35_aarch64" in platforms(JETPACKS[6])
    pins = {"numpy": "1.23.5", "pyzbar": "0.1.9"}

    def report(*items):
        return {"install": [{"metadata": {"name": n, "version": v}} for n, v in items]}

    assert check_report(JETPACKS[5], report(("numpy", "1.23.5"), ("pyzbar", "0.1.9")), pins) == []
    problems = check_report(JETPACKS[5], report(("numpy", "1.24.4"), ("opencv-python-headless", "4.10.0.84")), pins)
    assert any("not < 1.24" in p for p in problems)
    assert any("opencv-python-headless 4.10.0.84 would shadow" in p for p in problems)
    assert any("not pinned" in p for p in problems)


def test_the_installer_and_the_venv_check_import_nothing_outside_the_standard_library():
    code = ("import sys; import kiosk.deploy.__main__, kiosk.deploy.execute, kiosk.deploy.plan, kiosk.deploy.verify, "
            "kiosk.deploy.resolve; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'cv2', 'PyQt5', 'onnxruntime', 'setuptools', 'pip')]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-S", "-s", "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_running_from_the_prefix_copies_nothing(tmp_path):
    root = make_root(str(tmp_path), 6)
    src = make_source(str(tmp_path))
    shutil.move(src, os.path.join(root, "opt", "dabai"))
    facts = detect(root, source=os.path.join(root, "opt", "dabai"))
    assert not [s for s in P.plan(facts, P.Options()) if s.name.startswith("copy")]


def test_bootstrap_gets_the_extras_packages_from_setup_py(capsys):
    assert main(["requirements", "--extras", "dev,audio"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "sounddevice>=0.4" in lines and any(line.startswith("pytest") for line in lines)
    assert not [line for line in lines if line.lower().startswith(("opencv", "pyqt5"))]
