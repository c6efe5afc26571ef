"""The installer's polkit grant (the operator screen's 重启设备 / 关机 as the kiosk user, without a password) and the
unit's restart of a program that exits on the operator's 重启程序. Fake L4T roots, as tests/test_deploy.py."""

from __future__ import annotations

import configparser
import io
import os

from test_deploy import REPO, FakeSystem, facts_for, make_root, make_source

from kiosk.deploy import plan as P
from kiosk.deploy.__main__ import main
from kiosk.deploy.execute import OK, execute
from kiosk.deploy.facts import detect

ACTIONS = ["org.freedesktop.login1.reboot", "org.freedesktop.login1.reboot-multiple-sessions",
           "org.freedesktop.login1.power-off", "org.freedesktop.login1.power-off-multiple-sessions"]


def polkit_step(steps):
    return [s for s in steps if s.name.startswith("polkit")][0]


def test_the_plan_grants_the_kiosk_user_reboot_and_power_off_for_old_and_new_polkit(tmp_path):
    facts = facts_for(str(tmp_path), 5)
    steps = P.plan(facts, P.Options())
    step = polkit_step(steps)
    writes = {op.path: op for op in step.ops}
    assert set(writes) == {"/etc/polkit-1/localauthority/50-local.d/dabai-kiosk.pkla",
                           "/etc/polkit-1/rules.d/50-dabai-kiosk.rules"}
    assert all(op.mode == 0o644 for op in writes.values()) and step.fatal and not step.always
    pkla = configparser.ConfigParser(interpolation=None)
    pkla.optionxform = str  # type: ignore[assignment,method-assign]
    pkla.read_string(writes[P.POLKIT_PKLA].content)
    section = pkla[pkla.sections()[0]]
    assert section["Identity"] == "unix-user:kiosk" and section["Action"].split(";") == ACTIONS
    assert section["ResultAny"] == "yes"  # the kiosk is a service, in no login session
    rules = writes[P.POLKIT_RULES].content
    assert 'subject.user == "kiosk"' in rules and all('"{}"'.format(a) in rules for a in ACTIONS)
    assert "polkit.Result.YES" in rules and rules.count("{") == rules.count("}")
    assert "ignore-inhibit" not in rules + writes[P.POLKIT_PKLA].content  # nothing beyond the two actions
    names = [s.name for s in steps]
    assert names.index("enable dabai-kiosk.service") < names.index(step.name) < names.index("dabai-kiosk doctor")
    other = polkit_step(P.plan(facts, P.Options(user="gate", display=False)))
    assert "unix-user:gate" in other.ops[0].content and 'subject.user == "gate"' in other.ops[1].content


def test_the_grant_is_written_once_and_shown_by_the_dry_run(tmp_path, capsys):
    facts = facts_for(str(tmp_path), 5)  # FakeSystem's pip puts Jetson.GPIO's udev rule where JetPack 5's python has it
    system = FakeSystem(facts.root)
    assert execute(P.plan(facts, P.Options()), facts.root, system, out=io.StringIO()) == OK
    with open(os.path.join(facts.root, "etc/polkit-1/localauthority/50-local.d/dabai-kiosk.pkla"), encoding="utf-8") as f:
        assert "Identity=unix-user:kiosk" in f.read()
    assert os.path.isfile(os.path.join(facts.root, "etc/polkit-1/rules.d/50-dabai-kiosk.rules"))
    again = io.StringIO()
    facts2 = detect(facts.root, source=facts.source)._replace(python_version="3.8.10")
    assert execute(P.plan(facts2, P.Options()), facts.root, FakeSystem(facts.root), out=again) == OK
    assert "polkit: kiosk may reboot and power off (the operator screen) (done already)" in again.getvalue()

    root = make_root(str(tmp_path / "dry"), 5)
    assert main(["install", "--dry-run", "--root", root, "--source", make_source(str(tmp_path / "dry"))]) == 0
    printed = capsys.readouterr().out
    assert "write /etc/polkit-1/localauthority/50-local.d/dabai-kiosk.pkla (mode 644)" in printed
    assert "write /etc/polkit-1/rules.d/50-dabai-kiosk.rules (mode 644)" in printed
    assert "  | Action=" + ";".join(ACTIONS) in printed and "nothing executed" in printed
    assert not os.path.exists(os.path.join(root, "etc", "polkit-1"))


def test_the_unit_restarts_a_kiosk_that_exits_cleanly():
    """重启程序 under systemd is an exit with status 0: Restart=always starts the kiosk again (on-failure would not)."""
    with open(os.path.join(REPO, "systemd", "dabai-kiosk.service"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if not line.lstrip().startswith("#")]
    assert "Restart=always" in lines
    assert not [line for line in lines if line.startswith("RestartPreventExitStatus")]
    assert "User=kiosk" in lines  # the user the polkit grant names
    assert any(line.startswith("RestrictAddressFamilies=") and "AF_UNIX" in line for line in lines)  # D-Bus to logind
