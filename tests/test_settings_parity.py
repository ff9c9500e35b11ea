"""The VS Code extension declares exactly the server settings of bpf_lsp/settings.py.

editors/vscode/package.json contributes every server setting as ``bpfLsp.<name>`` with
the same type and default, plus a few client-only settings the server never sees.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpf_lsp.settings import SETTINGS, Settings, setting_names

PACKAGE_JSON = Path(__file__).resolve().parents[1] / "editors" / "vscode" / "package.json"
PREFIX = "bpfLsp."
CLIENT_ONLY = {"server.path", "server.pythonPath", "documentSelector", "trace.server"}
JSON_TYPE = {str: "string", list: "array", int: "number"}


def contributed() -> dict[str, dict]:
    manifest = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    properties = manifest["contributes"]["configuration"]["properties"]
    assert all(key.startswith(PREFIX) for key in properties), "every setting lives in the bpfLsp section"
    return {key[len(PREFIX):]: spec for key, spec in properties.items()}


def server_settings() -> dict[str, dict]:
    return {name: spec for name, spec in contributed().items() if name not in CLIENT_ONLY}


def test_client_only_settings_are_declared():
    assert CLIENT_ONLY <= contributed().keys()


def test_server_setting_names_match():
    assert set(server_settings()) == set(SETTINGS)


def test_settings_table_matches_settings_dataclass():
    assert setting_names() == list(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_type_default_and_description_match(name):
    kind, default, description = SETTINGS[name]
    spec = server_settings()[name]
    assert spec["type"] == JSON_TYPE[kind]
    assert spec["default"] == default
    assert type(spec["default"]) is type(default)
    assert spec["description"] == description
    if kind is list:
        assert spec["items"] == {"type": "string"}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_server_accepts_each_package_default(name):
    settings, problems = Settings().updated({name: server_settings()[name]["default"]})
    assert problems == []
    assert settings == Settings()


def test_server_accepts_all_package_defaults_in_the_vscode_wrapper():
    defaults = {name: spec["default"] for name, spec in server_settings().items()}
    for raw in (defaults, {"bpfLsp": defaults}):
        settings, problems = Settings().updated(raw)
        assert problems == []
        assert settings == Settings()


def test_unknown_key_is_reported():
    settings, problems = Settings().updated({"compilerPth": "/usr/bin/clang"})
    assert settings == Settings()
    assert len(problems) == 1 and "compilerPth" in problems[0]
