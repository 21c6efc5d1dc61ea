"""One source of defaults: the models in bot.config. config/default.yaml shows them (with the
reasons) and must say the same; the README's environment variables must be ones the loader reads."""

from __future__ import annotations

import re

import yaml

from bot.config import ENV_ALIASES, RepoConfig, Settings, env_name, load_settings, setting_keys
from bot.resources import data_path
from tests.conftest import ROOT


def test_the_models_defaults_equal_the_embedded_default_yaml():
    data = yaml.safe_load(data_path("config", "default.yaml").read_text())
    assert Settings.model_validate(data).model_dump(mode="json") == Settings().model_dump(mode="json")
    assert load_settings(None, environ={}).model_dump(mode="json") == Settings().model_dump(mode="json")


def test_a_config_built_directly_has_the_served_defaults():
    assert RepoConfig() == load_settings(None, environ={}).review
    assert "B404" in RepoConfig().skip_rules and RepoConfig().path_rules and "doc/" in RepoConfig().exclude


def test_every_setting_has_a_variable_and_the_variable_is_read():
    for section, key in setting_keys():
        name = env_name(section, key)
        value = {"bool": "true", "int": "7", "float": "7"}.get(
            type(getattr(getattr(Settings(), section), key)).__name__
        )
        if value is None:
            continue
        loaded = load_settings(None, environ={name: value})
        assert str(getattr(getattr(loaded, section), key)).lower() in (value, "7.0"), name


def test_the_readme_names_only_variables_the_loader_reads():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`(PATCHWARDEN_[A-Z0-9_]+)`", readme))
    known = {env_name(section, key) for section, key in setting_keys()} | set(ENV_ALIASES)
    known |= {f"PATCHWARDEN_{section}_{key}".upper() for section, key in setting_keys()}
    assert named, "the README lists the environment variables"
    assert named <= known, sorted(named - known)
    assert "PATCHWARDEN_CONFIG" not in data_path("config", "default.yaml").read_text()
