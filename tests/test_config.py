"""The configuration file: typed, documented, validated on load, saved atomically."""

from __future__ import annotations

import os

import pytest

from kiosk.config import Config, ConfigError, config_from_dict, load_config, render_toml, resolve_home, save_config
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
