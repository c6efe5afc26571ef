"""``plan(facts, options) -> List[Step]``: the install as data, computed from the facts alone (pure).

A step has operations (a command, a file written or edited, a tree copied) and checks that say it is
already done; the executor skips a done step, so a second install only runs the checks (the steps marked
``always``: JetPack's modules, the venv check, engines, doctor). Every path is a path on the target.
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from kiosk.deploy.facts import Facts, at
from kiosk.deploy.jetpack import NODEPS_FILE

# Debian packages the kiosk needs (tools/bootstrap.sh's list, plus Debian's PyQt5 and the xcb libraries its
# platform plugin loads). JetPack's python3-libnvinfer (tensorrt) and nvidia-opencv (cv2) are checked, not installed.
APT_PACKAGES = ("libzbar0", "espeak-ng", "fonts-noto-cjk", "fontconfig", "libportaudio2", "python3-venv",
                "python3-pyqt5", "libxcb-xinerama0", "libxkbcommon-x11-0", "libxcb-icccm4", "libxcb-image0",
                "libxcb-keysyms1", "libxcb-render-util0", "libxcb-xkb1")
# To build jetson-utils from a local checkout (--with-jetson-utils; its CMakeLists needs these).
JETSON_UTILS_APT = ("cmake", "build-essential", "python3-dev", "libglew-dev", "libgstreamer1.0-dev",
                    "libgstreamer-plugins-base1.0-dev", "libglib2.0-dev", "libsoup2.4-dev", "libjson-glib-dev",
                    "libgstrtspserver-1.0-dev")
PYCUDA_APT = ("build-essential", "python3-dev")  # pip builds pycuda (--cuda pycuda) with these and JetPack's nvcc
KIOSK_GROUPS = ("video", "audio", "gpio", "dialout", "render")  # the ones that exist; gpio is created
# JetPack ships the first (package jetson-gpio-common); the pip Jetson.GPIO wheel carries 99-gpio.rules for the rest.
GPIO_RULES = ("/lib/udev/rules.d/60-jetson-gpio-common.rules", "/etc/udev/rules.d/99-gpio.rules",
              "/lib/udev/rules.d/99-gpio.rules")
XORG_SNIPPET = "/etc/X11/xorg.conf.d/90-dabai-kiosk-noblank.conf"
XORG_NOBLANK = """\
# Written by the Dabai kiosk installer (kiosk/deploy): the gate screen never blanks or powers down.
Section "ServerFlags"
    Option "BlankTime" "0"
    Option "StandbyTime" "0"
    Option "SuspendTime" "0"
    Option "OffTime" "0"
EndSection

Section "Extensions"
    Option "DPMS" "Disable"
EndSection
"""
DCONF_PROFILE = "/etc/dconf/profile/user"
DCONF_KEYFILE = "/etc/dconf/db/local.d/90-dabai-kiosk"
DCONF_NOBLANK = """\
# Written by the Dabai kiosk installer (kiosk/deploy): GNOME never blanks, locks or suspends the gate screen.
[org/gnome/desktop/session]
idle-delay=uint32 0

[org/gnome/desktop/screensaver]
idle-activation-enabled=false
lock-enabled=false

[org/gnome/settings-daemon/plugins/power]
idle-dim=false
sleep-inactive-ac-type='nothing'
sleep-inactive-battery-type='nothing'
"""
# The operator screen's 重启设备 / 关机 run `systemctl reboot` / `systemctl poweroff` as the kiosk user: logind asks
# polkit, which would want a password. These grant the kiosk user those actions (the -multiple-sessions ones when
# someone else is logged in too, e.g. GDM's greeter); nothing else, and not over an inhibitor that blocks them.
POLKIT_ACTIONS = ("org.freedesktop.login1.reboot", "org.freedesktop.login1.reboot-multiple-sessions",
                  "org.freedesktop.login1.power-off", "org.freedesktop.login1.power-off-multiple-sessions")
# polkit 0.105 (JetPack 5 and 6: Ubuntu 20.04 and 22.04) reads .pkla files; polkit 0.106 and later, JavaScript rules.
POLKIT_PKLA = "/etc/polkit-1/localauthority/50-local.d/dabai-kiosk.pkla"
POLKIT_RULES = "/etc/polkit-1/rules.d/50-dabai-kiosk.rules"
GDM_CONF = "/etc/gdm3/custom.conf"
MAIN_UNIT = "dabai-kiosk.service"


class Options(NamedTuple):
    prefix: str = "/opt/dabai"
    home: str = "/var/lib/dabai"
    user: str = "kiosk"
    cuda: str = "cuda-python"  # or "pycuda" (built on the device with JetPack's nvcc)
    models_dir: Optional[str] = None  # `dabai-kiosk models fetch --from DIR`
    jetson_utils_src: Optional[str] = None  # a local jetson-utils checkout to build and install
    wheels_dir: Optional[str] = None  # offline: pip --no-index --find-links DIR
    display: bool = True  # GDM auto-login and no screen blanking; False for a headless kiosk


# Operations (what a step does).
class Run(NamedTuple):
    argv: List[str]
    env: Dict[str, str] = {}


class Write(NamedTuple):
    path: str
    content: str
    mode: int = 0o644
    source: str = ""  # where the content came from, for the printout


class IniSet(NamedTuple):  # set keys in one [section], keeping the rest of the file
    path: str
    section: str
    values: Dict[str, str]


class AddLines(NamedTuple):  # append the lines that are missing
    path: str
    lines: List[str]


class CopyTree(NamedTuple):  # mirror a checkout (without .venv, out, .git, caches) into a folder
    src: str
    dst: str


class CopyFile(NamedTuple):
    src: str
    dst: str


Op = Union[Run, Write, IniSet, AddLines, CopyTree, CopyFile]


# Checks (when all hold, the step is done).
class FileIs(NamedTuple):
    path: str
    content: str


class Exists(NamedTuple):
    paths: List[str]  # any of them


class HasLines(NamedTuple):
    path: str
    lines: List[str]


class IniHas(NamedTuple):
    path: str
    section: str
    values: Dict[str, str]


class DebInstalled(NamedTuple):
    packages: List[str]


class GroupExists(NamedTuple):
    name: str


class UserInGroups(NamedTuple):
    user: str
    groups: List[str]


class DirOwned(NamedTuple):
    path: str
    user: str
    mode: int


class TreeSame(NamedTuple):
    src: str
    dst: str


Check = Union[FileIs, Exists, HasLines, IniHas, DebInstalled, GroupExists, UserInGroups, DirOwned, TreeSame]


class Step(NamedTuple):
    name: str
    ops: List[Op]
    done: List[Check]
    always: bool = False  # a check: runs every time (its commands are themselves idempotent)
    fatal: bool = True  # False: a failure is reported at the end, the install goes on
    problems: List[str] = []  # found at plan time: the step fails with these lines
    notes: List[str] = []  # printed with the step


def venv_paths(opts: Options) -> Tuple[str, str]:
    venv = os.path.join(opts.prefix, ".venv")
    return venv, os.path.join(venv, "bin", "python")


def _stamp(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest() + "\n"


def jetpack_module_problems(facts: Facts) -> List[str]:
    """What JetPack should have given the system python and did not (checked, never installed by us)."""
    problems = []
    py = facts.python
    trt = facts.module("tensorrt")
    if not trt["ok"]:
        problems.append("tensorrt is not importable by {} ({}): install JetPack's TensorRT Python bindings "
                        "(apt-get install python3-libnvinfer, part of nvidia-jetpack)".format(py, trt.get("error", "")))
    cv2 = facts.module("cv2")
    if not cv2["ok"]:
        problems.append("cv2 is not importable by {} ({}): install JetPack's OpenCV (apt-get install nvidia-opencv)"
                        .format(py, cv2.get("error", "")))
    elif not cv2.get("gstreamer"):
        problems.append("cv2 {} at {} was built without GStreamer (a pip opencv-python wheel shadowing JetPack's?): "
                        "remove it (pip3 uninstall opencv-python opencv-python-headless) or install nvidia-opencv"
                        .format(cv2.get("version", "?"), cv2.get("file", "?")))
    return problems


def module_summary(facts: Facts) -> List[str]:
    lines = ["JetPack {} (L4T {}), system python {} {}".format(
        facts.jetpack.number, facts.l4t or "unknown: --jetpack given", facts.python, facts.python_version)]
    if not facts.python_version.startswith(facts.jetpack.python + "."):
        lines.append("warning: JetPack {} ships Python {}; the pins in {} were resolved for it".format(
            facts.jetpack.number, facts.jetpack.python, facts.jetpack.constraints))
    for name in ("tensorrt", "cv2", "PyQt5.QtCore", "onnxruntime", "jetson_utils", "numpy"):
        m = facts.module(name)
        what = "{} ({})".format(m.get("version") or "?", m.get("file", "")) if m["ok"] else "missing"
        if name == "cv2" and m["ok"]:
            what += ", GStreamer " + ("yes" if m.get("gstreamer") else "NO")
        if name == "onnxruntime" and m["ok"]:
            what += ", providers " + ",".join(m.get("providers", []))
        lines.append("system {}: {}".format(name, what))
    return lines


def polkit_pkla(user: str) -> str:
    """The grant for polkit 0.105's local authority. ResultAny: the kiosk runs as a service, in no login session."""
    return ("# Written by the Dabai kiosk installer (kiosk/deploy): the operator screen may reboot and power off the\n"
            "# device (systemctl reboot / poweroff as {user}) without a password. polkit 0.105 (Ubuntu 20.04, 22.04).\n"
            "[Dabai kiosk: reboot and power off from the operator screen]\n"
            "Identity=unix-user:{user}\n"
            "Action={actions}\n"
            "ResultAny=yes\n"
            "ResultInactive=yes\n"
            "ResultActive=yes\n").format(user=user, actions=";".join(POLKIT_ACTIONS))


def polkit_rules(user: str) -> str:
    """The same grant as a JavaScript rule, for polkit 0.106 and later."""
    actions = ",\n".join('        "{}"'.format(a) for a in POLKIT_ACTIONS)
    return ("// Written by the Dabai kiosk installer (kiosk/deploy): the operator screen may reboot and power off the\n"
            "// device (systemctl reboot / poweroff as {user}) without a password. polkit 0.106 and later.\n"
            "polkit.addRule(function(action, subject) {{\n"
            "    var allowed = [\n{actions}\n    ];\n"
            "    if (subject.user == \"{user}\" && allowed.indexOf(action.id) >= 0) {{\n"
            "        return polkit.Result.YES;\n"
            "    }}\n"
            "}});\n").format(user=user, actions=actions)


def plan(facts: Facts, opts: Options) -> List[Step]:
    jp = facts.jetpack
    venv, vpy = venv_paths(opts)
    vbin = os.path.join(venv, "bin")
    prefix = opts.prefix
    req = os.path.join(prefix, jp.requirements)
    con = os.path.join(prefix, jp.constraints)
    nodeps = os.path.join(prefix, os.path.dirname(jp.requirements), NODEPS_FILE)
    index = ["--no-index", "--find-links", opts.wheels_dir] if opts.wheels_dir else []
    pip = [vpy, "-m", "pip", "install", "--disable-pip-version-check"]
    as_kiosk = ["runuser", "-u", opts.user, "--", "env", "DABAI_HOME=" + opts.home]
    steps: List[Step] = []

    steps.append(Step("detect the Jetson", [], [], always=True, notes=module_summary(facts)))
    steps.append(Step("JetPack's tensorrt and cv2 (with GStreamer) for the system python", [], [], always=True,
                      problems=jetpack_module_problems(facts)))

    wanted = list(APT_PACKAGES) + (list(JETSON_UTILS_APT) if opts.jetson_utils_src else [])
    wanted += [p for p in PYCUDA_APT if opts.cuda == "pycuda" and p not in wanted]
    missing = [p for p in wanted if p not in facts.packages] or wanted
    steps.append(Step("Debian packages", [
        Run(["apt-get", "update"]),
        Run(["apt-get", "install", "-y", "--no-install-recommends"] + missing, {"DEBIAN_FRONTEND": "noninteractive"}),
    ], [DebInstalled(wanted)]))

    if os.path.realpath(facts.source) != os.path.realpath(at(facts.root, prefix)):
        steps.append(Step("copy the checkout to " + prefix, [CopyTree(facts.source, prefix)],
                          [TreeSame(facts.source, prefix)]))

    venv_cmd = [facts.python, "-m", "venv", "--system-site-packages"]
    if facts.venv_system_site is False:  # a venv that cannot see JetPack's modules: make it again
        venv_cmd.append("--clear")
    steps.append(Step("venv {} with the system site-packages (JetPack's tensorrt, cv2, PyQt5)".format(venv),
                      [Run(venv_cmd + [venv])],
                      [Exists([vpy]), HasLines(os.path.join(venv, "pyvenv.cfg"), ["include-system-site-packages = true"])]))

    stamp = os.path.join(venv, ".dabai-tools")
    key = _stamp("tools", facts.deploy_digest, *index)
    steps.append(Step("pip, setuptools and wheel in the venv (pinned)", [
        Run(pip + ["--upgrade", "pip", "setuptools", "wheel", "-c", con] + index),
        Write(stamp, key, source="a digest of its inputs")],
        [FileIs(stamp, key)]))

    stamp = os.path.join(venv, ".dabai-kiosk")
    key = _stamp("kiosk", facts.source_digest)
    steps.append(Step("the kiosk package, without its pip dependencies (they would shadow JetPack's cv2 and a "
                      "Jetson onnxruntime)", [
                          # setuptools never empties build/: a module deleted from the checkout would stay in the wheel
                          Run(["rm", "-rf", os.path.join(prefix, "build")]),
                          Run(pip + ["--no-deps", "--no-build-isolation", "--force-reinstall", "-c", con, prefix] + index),
                          Write(stamp, key, source="a digest of its inputs")], [FileIs(stamp, key)]))

    extra = ["cuda-python"] if opts.cuda == "cuda-python" else []
    if not facts.module("onnxruntime")["ok"] and not facts.has_gpu_onnxruntime():
        # the CPU build from PyPI; an onnxruntime the system has, or an onnxruntime-gpu put in the venv, is kept
        # (the CPU wheel would overwrite the GPU one's files: both are the module onnxruntime)
        extra.append("onnxruntime")
    ops: List[Op] = [Run(pip + ["-r", req, "-c", con] + extra + index),
                     Run(pip + ["--no-deps", "-r", nodeps, "-c", con] + index)]
    if opts.cuda == "pycuda":
        ops.append(Run(pip + ["pycuda", "-c", con] + index,
                       {"PATH": "/usr/local/cuda/bin:/usr/sbin:/usr/bin:/sbin:/bin", "CUDA_ROOT": "/usr/local/cuda"}))
    stamp = os.path.join(venv, ".dabai-requirements")
    key = _stamp("requirements", facts.deploy_digest, opts.cuda, *(extra + index))
    steps.append(Step("runtime requirements for JetPack {} ({}, -c {})".format(jp.number, " ".join(
        [os.path.basename(req)] + extra + (["pycuda"] if opts.cuda == "pycuda" else [])), os.path.basename(con)),
        ops + [Write(stamp, key, source="a digest of its inputs")], [FileIs(stamp, key)]))

    if opts.jetson_utils_src:
        src = opts.jetson_utils_src
        build = os.path.join(src, "build")
        steps.append(Step("jetson-utils from " + src, [
            Run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release"]),
            Run(["cmake", "--build", build, "--parallel", str(os.cpu_count() or 2)]),
            Run(["cmake", "--install", build]),
            Run(["ldconfig"]),
        ], [Exists(["/usr/local/lib/libjetson-utils.so", "/usr/lib/libjetson-utils.so"])]))

    verify = [vpy, "-m", "kiosk.deploy.verify", "--jetpack", str(jp.number), "--cuda", opts.cuda]
    if opts.jetson_utils_src:
        verify.append("--jetson-utils")
    steps.append(Step("check the venv: tensorrt, CUDA bindings, cv2 (JetPack's, GStreamer), numpy, PyQt5, onnxruntime",
                      [Run(verify)], [], always=True))

    # gpio as JetPack makes it, and any group the units name (systemd refuses to start a unit whose
    # SupplementaryGroups= has a group that does not exist)
    unit_groups = [g for u in facts.units for g in u.groups]
    create = sorted(set(["gpio"] + unit_groups) - set(facts.groups))
    if create:
        steps.append(Step("groups " + ",".join(create), [Run(["groupadd", "--system", g]) for g in create],
                          [GroupExists(g) for g in create]))
    groups = [g for g in KIOSK_GROUPS if g in facts.groups or g in create]
    groups += [g for g in unit_groups if g not in groups]
    if opts.user in facts.users:
        user_ops = [Run(["usermod", "--append", "--groups", ",".join(groups), opts.user])]
    else:
        # A regular (not --system) account: GDM auto-logs it in, and its session is where the kiosk draws.
        user_ops = [Run(["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", "--comment",
                         "Dabai gate kiosk", "--groups", ",".join(groups), opts.user])]
    steps.append(Step("user {} in groups {}".format(opts.user, ",".join(groups)), user_ops,
                      [UserInGroups(opts.user, groups)]))

    site = os.path.join(venv, "lib", "python" + ".".join(facts.python_version.split(".")[:2]), "site-packages")
    steps.append(Step("udev rule that gives the gpio group the GPIO devices", [
        CopyFile(os.path.join(site, "Jetson", "GPIO", "99-gpio.rules"), GPIO_RULES[1]),
        Run(["udevadm", "control", "--reload-rules"]), Run(["udevadm", "trigger"])], [Exists(list(GPIO_RULES))]))

    # the user's own group when it has one (useradd --user-group makes it)
    group = ["-g", opts.user] if opts.user in facts.groups or opts.user not in facts.users else []
    steps.append(Step("data home {} (owner {}, 0750)".format(opts.home, opts.user), [
        Run(["install", "-d", "-o", opts.user] + group + ["-m", "0750", opts.home])],
        [DirOwned(opts.home, opts.user, 0o750)]))

    unit_ops: List[Op] = [Write("/etc/systemd/system/" + u.name, u.content, 0o644, "systemd/" + u.name)
                          for u in facts.units]
    steps.append(Step("systemd units ({})".format(", ".join(u.name for u in facts.units) or "none in systemd/"),
                      unit_ops + [Run(["systemctl", "daemon-reload"])],
                      [FileIs(w.path, w.content) for w in unit_ops if isinstance(w, Write)]))
    main = [u for u in facts.units if u.name == MAIN_UNIT]
    targets = main[0].wanted_by if main else []
    steps.append(Step("enable " + MAIN_UNIT, [Run(["systemctl", "enable", MAIN_UNIT])],
                      [Exists(["/etc/systemd/system/{}.wants/{}".format(t, MAIN_UNIT)]) for t in targets],
                      problems=[] if main else ["systemd/{} is missing from the checkout".format(MAIN_UNIT)]))

    grants = [Write(POLKIT_PKLA, polkit_pkla(opts.user)), Write(POLKIT_RULES, polkit_rules(opts.user))]
    steps.append(Step("polkit: {} may reboot and power off (the operator screen)".format(opts.user), list(grants),
                      [FileIs(w.path, w.content) for w in grants]))

    if opts.display:
        if facts.has_gdm:
            values = {"AutomaticLoginEnable": "true", "AutomaticLogin": opts.user, "WaylandEnable": "false"}
            steps.append(Step("GDM logs {} in at boot (X11)".format(opts.user), [IniSet(GDM_CONF, "daemon", values)],
                              [IniHas(GDM_CONF, "daemon", values)]))
        steps.append(Step("X never blanks the screen", [Write(XORG_SNIPPET, XORG_NOBLANK)],
                          [FileIs(XORG_SNIPPET, XORG_NOBLANK)]))
        if facts.has_dconf:
            profile = ["user-db:user", "system-db:local"]
            steps.append(Step("GNOME never blanks or locks the screen (dconf)", [
                AddLines(DCONF_PROFILE, profile), Write(DCONF_KEYFILE, DCONF_NOBLANK), Run(["dconf", "update"])],
                [HasLines(DCONF_PROFILE, profile), FileIs(DCONF_KEYFILE, DCONF_NOBLANK), Exists(["/etc/dconf/db/local"])]))

    dabai = os.path.join(vbin, "dabai-kiosk")
    if opts.models_dir:
        steps.append(Step("models from " + opts.models_dir,
                          [Run(as_kiosk + [dabai, "models", "fetch", "--from", opts.models_dir])], [], always=True))
    steps.append(Step("TensorRT engines, built on this device (`dabai-kiosk engine build`)",
                      [Run(as_kiosk + [dabai, "engine", "build"])], [], always=True, fatal=False))
    steps.append(Step("dabai-kiosk doctor", [Run(as_kiosk + [dabai, "doctor"])], [], always=True, fatal=False))
    return steps


def commands(steps: Sequence[Step]) -> List[List[str]]:
    """Every command of a plan, in order (for the tests and the printout)."""
    return [op.argv for s in steps for op in s.ops if isinstance(op, Run)]
