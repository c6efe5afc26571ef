"""The configuration file: typed, documented, validated on load, saved atomically."""

from __future__ import annotations

import os

import pytest

from kiosk.config import (
    MAX_PROBLEMS,
    Config,
    ConfigError,
    config_from_dict,
    load_config,
    render_toml,
    resolve_home,
    save_config,
)
from kiosk.config import replace as config_replace


def test_defaults_without_a_file(home):
    config = load_config(home.config)
    assert config == Config()
    assert config.policy.mask_required and config.policy.pass_required and not config.policy.request_required
    assert config.gate.driver == "sim"


def test_round_trip_keeps_every_value(home):
    config = config_replace(Config(), "policy", request_required=True, vote_window=7, vote_min=4)
    config = config_replace(config, "community", name='a "quoted" 小区 \\ name')
    save_config(config, home.config)
    assert load_config(home.config) == config
    assert "# require the spoken request" in home.config.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"policy": {"mask_required": "yes"}}, "policy.mask_required = 'yes': must be true or false"),
        ({"gate": {"pulse_ms": -5}}, "gate.pulse_ms = -5: must be between 50 and 10000"),
        ({"gate": {"driver": "telnet"}}, "gate.driver = 'telnet': must be one of sim, gpio, serial"),
        ({"policy": {"vote_window": 3, "vote_min": 4}}, "policy.vote_min = 4: must not exceed policy.vote_window"),
        ({"policy": {"mask_requred": True}}, "policy.mask_requred: unknown key"),
        ({"polcy": {}}, "[polcy]: unknown section"),
        ({"camera": {"width": 640.5}}, "camera.width = 640.5: must be a whole number"),
        ({"policy": {"cooldown_s": True}}, "policy.cooldown_s = True: must be a number"),
    ],
)
def test_bad_values_name_key_value_and_rule(data, needle):
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert needle in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"gate": {"pulse_ms": 0, "driver": "x"}, "speech": {"tts": 3}})
    assert len(err.value.problems) == 3


def test_corrupt_file_is_an_error_not_defaults(home):
    home.root.mkdir(parents=True)
    home.config.write_bytes(b"[policy\nmask_required = \xff")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(home.config)
    home.config.write_bytes(b"[policy\nmask_required = true\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(home.config)


def test_half_valid_file_does_not_load(home):
    home.root.mkdir(parents=True)
    home.config.write_text("[policy]\nmask_required = false\nvote_min = 99\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="vote_min"):
        load_config(home.config)


def test_save_is_atomic_and_refuses_invalid(home, monkeypatch):
    save_config(Config(), home.config)
    before = home.config.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_config(config_replace(Config(), "gate", pulse_ms=1234), home.config)
    assert home.config.read_bytes() == before
    assert [p.name for p in home.root.iterdir()] == ["config.toml"]  # no temp file left behind


def test_defaults_text_documents_every_key():
    text = render_toml(Config())
    keys = [line.split(" = ")[0] for line in text.splitlines() if " = " in line and not line.startswith("#")]
    docs = [line for line in text.splitlines() if line.startswith("# ") and "Default:" in line]
    assert len(keys) == len(docs) > 30


def test_home_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("DABAI_HOME", str(tmp_path / "env"))
    assert resolve_home().root == (tmp_path / "env").resolve()
    assert resolve_home(str(tmp_path / "arg")).root == (tmp_path / "arg").resolve()
    monkeypatch.delenv("DABAI_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_home().root == (tmp_path / "xdg" / "dabai").resolve()


def test_nan_infinite_and_runaway_text_are_refused() -> None:
    for bad in ({"policy": {"engaged_timeout_s": float("nan")}}, {"policy": {"engaged_timeout_s": float("inf")}},
                {"community": {"name": "x" * 5000}}, {"community": {"name": "a\nb"}}):
        with pytest.raises(ConfigError) as exc:
            config_from_dict(bad)
        assert len(exc.value.problems) == 1


# ---- pathological files: refused with one short reason, never a traceback or a flood --------------------------


def refusal(home, content):
    """The problems of loading a config file holding ``content`` (bytes or text)."""
    home.root.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    home.config.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(home.config)
    assert len(str(err.value)) < 4000
    return err.value.problems


@pytest.mark.parametrize("value", ["[" * 500 + "]" * 500, "{a = " * 500 + "1" + "}" * 500])
def test_nesting_500_deep_is_refused(home, value):
    assert refusal(home, "[policy]\nmask_required = {}\n".format(value)) == [
        "nested too deeply: a section holds only key = value lines"]


def test_a_table_inside_a_section_is_refused(home):
    deep = "[policy.{}]\nx = 1\n".format(".".join(["a"] * 500))
    assert refusal(home, deep) == ["policy.a: a table inside [policy]; a section holds only key = value lines"]
    problems = refusal(home, "[policy]\nmask_required = [[[true]]]\nvote_window = {a = 1}\n")
    assert problems == ["policy.mask_required = an array: must be true or false",
                        "policy.vote_window: a table inside [policy]; a section holds only key = value lines"]


def test_200000_unknown_keys_give_a_short_message(home):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"policy": {"k{}".format(i): 1 for i in range(200000)}})
    problems = err.value.problems
    assert len(problems) == MAX_PROBLEMS + 1 and problems[0].startswith("policy.k0: unknown key (known: mask_required")
    assert problems[-1] == "… and {} more".format(200000 - MAX_PROBLEMS) and len(str(err.value)) < 10000
    # in a file, the size cap refuses them before the parser runs
    many = "[policy]\n" + "".join("k{} = 1\n".format(i) for i in range(200000))
    assert refusal(home, many) == ["larger than 256 KiB: not a kiosk configuration"]


def test_long_names_and_values_are_cut_short():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"x" * 5000: {}, "policy": {"y\n" * 5000: 1, "mask_required": "z" * 5000}})
    assert len(str(err.value)) < 1000 and "\n  - " in str(err.value) and "xxx…" in str(err.value)


def test_a_utf8_byte_order_mark_is_accepted(home):
    home.root.mkdir(parents=True)
    home.config.write_bytes(b"\xef\xbb\xbf[policy]\nmask_required = false\n")
    assert load_config(home.config).policy.mask_required is False


def test_utf16_and_binary_files_are_named(home):
    utf16 = "[policy]\nmask_required = false\n".encode("utf-16")
    assert refusal(home, utf16) == ["saved as UTF-16 (it starts with a UTF-16 byte-order mark): save it as UTF-8"]
    assert refusal(home, "[policy]\n".encode("utf-16-le")) == [
        "contains NUL bytes: a binary or UTF-16 file, not UTF-8 TOML text"]
    garbage = bytes(range(256)) * 64
    assert refusal(home, garbage) == ["not UTF-8 text (byte 128 is 0x80): save it as UTF-8"]


@pytest.mark.parametrize("content", [b"", b"\n \n\t", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused_not_taken_for_the_defaults(home, content):
    assert refusal(home, content) == ["empty (a truncated write?): delete it to run on the defaults"]


def test_a_comments_only_file_means_the_defaults(home):
    home.root.mkdir(parents=True)
    home.config.write_text("# nothing changed yet\n", encoding="utf-8")
    assert load_config(home.config) == Config()


def test_a_directory_at_the_config_path_is_refused(home):
    home.config.mkdir(parents=True)
    with pytest.raises(ConfigError, match="a directory, not a file"):
        load_config(home.config)


def test_an_unreadable_file_is_refused(home, monkeypatch):
    import kiosk.config

    save_config(Config(), home.config)

    def denied(path, *args, **kwargs):  # chmod 000 does not stop root, who runs these tests in CI
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(kiosk.config, "open", denied, raising=False)
    with pytest.raises(ConfigError, match="cannot read: .*Permission denied"):
        load_config(home.config)


def test_config_check_fails_and_lists_the_problems(home, capsys):
    from kiosk.cli import main

    assert main(["config", "check"]) == 0 and "valid" in capsys.readouterr().out
    home.root.mkdir(parents=True)
    home.config.write_text("[policy]\nmask_required = " + "[" * 500 + "]" * 500 + "\n", encoding="utf-8")
    assert main(["config", "check"]) != 0
    assert "nested too deeply" in capsys.readouterr().err
    home.config.write_text("[policy]\n" + "".join("k{} = 1\n".format(i) for i in range(1000)), encoding="utf-8")
    assert main(["config", "check"]) != 0
    err = capsys.readouterr().err
    assert "policy.k0: unknown key" in err and "… and 980 more" in err and len(err) < 10000
