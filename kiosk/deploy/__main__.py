"""``python3 -m kiosk.deploy install | resolve | requirements`` (standard library only, Python 3.8)."""

from __future__ import annotations

import argparse
import ast
import os
import sys
from typing import Dict, List, Optional, Sequence

from kiosk.deploy.jetpack import JETPACKS, SOURCE


def setup_requirements(setup_py: str) -> Dict[str, List[str]]:
    """setup.py's install_requires ("" key) and extras_require, read without running it."""
    with open(setup_py, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found: Dict[str, List[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup":
            for kw in node.keywords:
                if kw.arg == "install_requires":
                    found[""] = list(ast.literal_eval(kw.value))
                elif kw.arg == "extras_require":
                    found.update(ast.literal_eval(kw.value))
    return found


def cmd_install(args: argparse.Namespace) -> int:
    from kiosk.deploy.execute import execute
    from kiosk.deploy.facts import DeployError, detect
    from kiosk.deploy.plan import Options, plan

    if not args.dry_run and args.root == "/" and hasattr(os, "geteuid") and os.geteuid() != 0:
        print("install: run it as root (sudo make install), or look first: make install DRY_RUN=1", file=sys.stderr)
        return 1
    def absolute(path: Optional[str]) -> Optional[str]:  # the commands run from /
        return os.path.abspath(os.path.expanduser(path)) if path else None

    opts = Options(prefix=args.prefix, home=args.home, user=args.user, cuda=args.cuda, models_dir=absolute(args.models),
                   jetson_utils_src=absolute(args.with_jetson_utils), wheels_dir=absolute(args.wheels),
                   display=not args.headless)
    try:
        facts = detect(args.root, args.prefix, args.source, args.python, args.jetpack)
    except DeployError as exc:
        print("install: " + str(exc), file=sys.stderr)
        return 1
    return execute(plan(facts, opts), root=args.root, dry_run=args.dry_run)


def cmd_resolve(args: argparse.Namespace) -> int:
    from kiosk.deploy.resolve import resolve

    return resolve(args.jetpack or sorted(JETPACKS), args.source, args.out, args.cache_dir)


def cmd_requirements(args: argparse.Namespace) -> int:
    reqs = setup_requirements(os.path.join(args.source, "setup.py"))
    for extra in filter(None, args.extras.split(",")):
        for line in reqs.get(extra, []):
            print(line)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m kiosk.deploy", description="The Dabai kiosk on a Jetson.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    i = sub.add_parser("install", help="install the kiosk as a service on this Jetson (sudo make install)")
    i.add_argument("--dry-run", action="store_true", help="print every step, execute none")
    i.add_argument("--root", default="/", help="the system's root folder (tests use a fake L4T root)")
    i.add_argument("--prefix", default="/opt/dabai", help="where the kiosk is installed, with its venv in .venv")
    i.add_argument("--home", default="/var/lib/dabai", help="the kiosk's data home (DABAI_HOME)")
    i.add_argument("--user", default="kiosk", help="the account the kiosk runs as (auto-logged-in by GDM)")
    i.add_argument("--jetpack", type=int, choices=sorted(JETPACKS),
                   help="which JetPack this is, when /etc/nv_tegra_release cannot say")
    i.add_argument("--python", help="the system python3 the venv is made from (default /usr/bin/python3)")
    i.add_argument("--source", default=SOURCE, help="the checkout to install (default: this one)")
    i.add_argument("--cuda", choices=("cuda-python", "pycuda"), default="cuda-python",
                   help="CUDA bindings: cuda-python wheels (default), or pycuda built here with JetPack's nvcc")
    i.add_argument("--models", metavar="DIR", help="install third-party models from DIR (dabai-kiosk models fetch --from)")
    i.add_argument("--with-jetson-utils", metavar="SRC_DIR",
                   help="build and install jetson-utils (CSI cameras) from a local checkout of dusty-nv/jetson-utils")
    i.add_argument("--wheels", metavar="DIR", help="offline: pip installs only from the wheels in DIR")
    i.add_argument("--headless", action="store_true", help="no GDM auto-login, no screen-blanking settings")
    i.set_defaults(func=cmd_install)
    r = sub.add_parser("resolve", help="pip dry-run resolve of each JetPack's requirements for aarch64 (make jetson-deps)")
    r.add_argument("--jetpack", type=int, action="append", choices=sorted(JETPACKS))
    r.add_argument("--source", default=SOURCE)
    r.add_argument("--out", default="out", help="pip's reports go here (jetson-deps-jpN.json)")
    r.add_argument("--cache-dir", help="pip's download cache")
    r.set_defaults(func=cmd_resolve)
    q = sub.add_parser("requirements", help="print setup.py's requirements of some extras (tools/bootstrap.sh)")
    q.add_argument("--extras", default="", help="comma-separated, e.g. dev,audio")
    q.add_argument("--source", default=SOURCE)
    q.set_defaults(func=cmd_requirements)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
