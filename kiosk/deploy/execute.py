"""Runs (or, dry, prints) the steps of a plan; evaluates their done checks against a root folder.

Commands go through a runner ``(argv, env) -> exit status`` so the tests can record them; file
operations are done here, under ``root`` (the tests' fake root, "/" on the device).
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, TextIO

from kiosk.deploy.facts import at, installed_packages, read_accounts, tree_files, user_uid
from kiosk.deploy.plan import (
    AddLines,
    Check,
    CopyFile,
    CopyTree,
    DebInstalled,
    DirOwned,
    Exists,
    FileIs,
    GroupExists,
    HasLines,
    IniHas,
    IniSet,
    Op,
    Run,
    Step,
    TreeSame,
    UserInGroups,
    Write,
)

Runner = Callable[[List[str], Dict[str, str]], int]

OK, FAILED, WARNINGS = 0, 1, 3  # exit statuses of `install`: 3 = installed, but engines or doctor failed


def system_runner(argv: List[str], env: Dict[str, str]) -> int:
    """Runs a command with its output on the console; 127 when it cannot be started."""
    full = dict(os.environ)
    full.update(env)
    try:
        return subprocess.call(argv, env=full, cwd="/")  # not the checkout: `python -m` would import from it
    except OSError as exc:
        print("        cannot run {}: {}".format(argv[0], exc), file=sys.stderr)
        return 127


def describe(op: Op) -> List[str]:
    if isinstance(op, Run):
        env = " ".join("{}={}".format(k, shlex.quote(v)) for k, v in sorted(op.env.items()))
        return ["$ " + (env + " " if env else "") + " ".join(shlex.quote(a) for a in op.argv)]
    if isinstance(op, Write):
        head = "write {} (mode {:o}{})".format(op.path, op.mode, ", from " + op.source if op.source else "")
        return [head] if op.source else [head] + ["  | " + line for line in op.content.splitlines()]
    if isinstance(op, IniSet):
        return ["set in {} [{}]: {}".format(op.path, op.section, ", ".join(
            "{}={}".format(k, v) for k, v in op.values.items()))]
    if isinstance(op, AddLines):
        return ["add to {} (when missing): {}".format(op.path, ", ".join(op.lines))]
    if isinstance(op, CopyTree):
        return ["copy {} -> {} (without .git, .venv, out, caches; files gone from the checkout are removed)".format(
            op.src, op.dst)]
    return ["copy {} -> {}".format(op.src, op.dst)]


def is_done(check: Check, root: str) -> bool:
    if isinstance(check, FileIs):
        return _read(at(root, check.path)) == check.content
    if isinstance(check, Exists):
        return any(os.path.lexists(at(root, p)) for p in check.paths)
    if isinstance(check, HasLines):
        have = set(line.strip() for line in (_read(at(root, check.path)) or "").splitlines())
        return all(line in have for line in check.lines)
    if isinstance(check, IniHas):
        parser = _ini(at(root, check.path))
        return parser.has_section(check.section) and all(
            parser.get(check.section, k, fallback=None) == v for k, v in check.values.items())
    if isinstance(check, DebInstalled):
        return set(check.packages) <= installed_packages(root)
    if isinstance(check, GroupExists):
        return check.name in read_accounts(root)[1]
    if isinstance(check, UserInGroups):
        users = read_accounts(root)[0]
        return check.user in users and set(check.groups) <= users[check.user]
    if isinstance(check, DirOwned):
        path = at(root, check.path)
        if not os.path.isdir(path):
            return False
        st = os.stat(path)
        return st.st_uid == user_uid(root, check.user) and (st.st_mode & 0o7777) == check.mode
    if isinstance(check, TreeSame):
        return _tree_same(check.src, at(root, check.dst))
    raise TypeError(check)


def step_done(step: Step, root: str) -> bool:
    return bool(step.done) and all(is_done(c, root) for c in step.done)


def apply(op: Op, root: str, runner: Runner) -> int:
    """Does one operation; its exit status (0 = fine)."""
    if isinstance(op, Run):
        return runner(list(op.argv), dict(op.env))
    if isinstance(op, Write):
        _write(at(root, op.path), op.content, op.mode)
    elif isinstance(op, IniSet):
        _ini_set(at(root, op.path), op.section, op.values)
    elif isinstance(op, AddLines):
        path = at(root, op.path)
        text = _read(path) or ""
        have = set(line.strip() for line in text.splitlines())
        add = [line for line in op.lines if line not in have]
        if add:
            _write(path, text + ("" if not text or text.endswith("\n") else "\n") + "\n".join(add) + "\n", 0o644)
    elif isinstance(op, CopyTree):
        _mirror(op.src, at(root, op.dst))
    elif isinstance(op, CopyFile):
        with open(at(root, op.src), encoding="utf-8") as f:
            _write(at(root, op.dst), f.read(), 0o644)
    return 0


def execute(steps: Sequence[Step], root: str = "/", runner: Runner = system_runner, dry_run: bool = False,
            out: Optional[TextIO] = None) -> int:
    """OK, FAILED (a fatal step failed: the install stopped there) or WARNINGS."""
    out = out or sys.stdout
    warnings: List[str] = []
    width = len(str(len(steps)))
    for n, step in enumerate(steps, 1):
        done = not step.always and step_done(step, root)
        state = " (done already)" if done else ""
        print("[{:>{w}}/{}] {}{}".format(n, len(steps), step.name, state, w=width), file=out)
        for note in step.notes:
            print("        " + note, file=out)
        if dry_run or not done:
            for op in step.ops:
                for line in describe(op):
                    print("        " + line, file=out)
        if dry_run:
            for problem in step.problems:
                print("        would stop here: " + problem, file=out)
        if dry_run or done:
            continue
        failure = "\n".join(step.problems)
        if not failure:
            for op in step.ops:
                try:
                    rc = apply(op, root, runner)
                except OSError as exc:
                    failure = "{}: {}".format(describe(op)[0], exc)
                    break
                if rc != 0:
                    failure = "{} exited with status {}".format(describe(op)[0], rc)
                    break
        if not failure and not step.always and step.done and not step_done(step, root):
            failure = "it ran, but its check still fails: {}".format(
                "; ".join(repr(c) for c in step.done if not is_done(c, root)))
        if failure:
            print("        FAILED: " + failure.replace("\n", "\n        FAILED: "), file=out)
            if step.fatal:
                print("install stopped at step {} ({}); fix the above and run it again (done steps are skipped)"
                      .format(n, step.name), file=out)
                return FAILED
            warnings.append("{}: {}".format(step.name, failure.splitlines()[0]))
    if dry_run:
        print("dry run: {} steps printed, nothing executed".format(len(steps)), file=out)
        return OK
    for w in warnings:
        print("warning: " + w, file=out)
    print("installed{}; the kiosk starts at the next boot (or now: systemctl start dabai-kiosk)".format(
        " with warnings" if warnings else ""), file=out)
    return WARNINGS if warnings else OK


def _read(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _write(path: str, content: str, mode: int) -> None:
    """Atomic: a temporary file beside it, then renamed over it."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dabai-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _ini(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(_read(path) or "")
    except configparser.Error:
        pass
    return parser


def _ini_set(path: str, section: str, values: Dict[str, str]) -> None:
    """Sets keys in [section], keeping every other line (comments too) as it was."""
    lines = (_read(path) or "").splitlines()
    pending = dict(values)
    result: List[str] = []
    current = None

    def flush() -> None:
        result.extend("{}={}".format(k, v) for k, v in pending.items())
        pending.clear()

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if current == section:
                flush()
            current = stripped[1:-1].strip()
        elif current == section and "=" in stripped and not stripped.startswith(("#", ";")):
            key = stripped.split("=", 1)[0].strip()
            if key in values:
                if key in pending:
                    result.append("{}={}".format(key, pending.pop(key)))
                continue  # a second copy of the key: dropped
        result.append(line)
    if current == section:
        flush()
    if pending:
        if section not in [ln.strip()[1:-1].strip() for ln in lines if ln.strip().startswith("[")]:
            result.append("[{}]".format(section))
        flush()
    _write(path, "\n".join(result) + "\n", 0o644)


def _tree_same(src: str, dst: str) -> bool:
    files = tree_files(src)
    if not os.path.isdir(dst) or tree_files(dst) != files:
        return False
    for rel in files:
        a, b = os.path.join(src, rel), os.path.join(dst, rel)
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            if fa.read() != fb.read():
                return False
    return True


def _mirror(src: str, dst: str) -> None:
    files = tree_files(src)
    for rel in files:
        target = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(src, rel), target)
    for rel in sorted(set(tree_files(dst)) - set(files)):
        os.unlink(os.path.join(dst, rel))

