"""Client capabilities the end-to-end tests initialize with.

VS Code 1.95 with vscode-languageclient 9 (what editors/vscode ships): pytest-lsp's recorded
VS Code 1.65 capabilities plus what later releases added. `vscode_capabilities(pull=False)`
drops `textDocument.diagnostic`, the way a push-only client (or an older VS Code) looks.
"""
from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from lsprotocol import types
from lsprotocol.converters import get_converter

VSCODE_VERSION = "1.95.3"

_NEWER: dict[str, Any] = {
    "general": {
        "staleRequestSupport": {"cancel": True, "retryOnContentModified": [
            "textDocument/semanticTokens/full", "textDocument/semanticTokens/range",
            "textDocument/semanticTokens/full/delta"]},
        "regularExpressions": {"engine": "ECMAScript", "version": "ES2020"},
        "markdown": {"parser": "marked", "version": "1.1.0"},
        "positionEncodings": ["utf-16"],
    },
    "workspace": {
        "diagnostics": {"refreshSupport": True},
        "inlayHint": {"refreshSupport": True},
        "inlineValue": {"refreshSupport": True},
        "foldingRange": {"refreshSupport": True},
    },
    "textDocument": {
        "publishDiagnostics": {"relatedInformation": True, "versionSupport": False,
                               "tagSupport": {"valueSet": [1, 2]}, "codeDescriptionSupport": True,
                               "dataSupport": True},
        "diagnostic": {"dynamicRegistration": True, "relatedDocumentSupport": False},
        "hover": {"dynamicRegistration": True, "contentFormat": ["markdown", "plaintext"]},
        "inlayHint": {"dynamicRegistration": True, "resolveSupport": {"properties": [
            "tooltip", "textEdits", "label.tooltip", "label.location", "label.command"]}},
        "typeHierarchy": {"dynamicRegistration": True},
        "inlineValue": {"dynamicRegistration": True},
    },
    "window": {"showMessage": {"messageActionItem": {"additionalPropertiesSupport": True}},
               "showDocument": {"support": True}, "workDoneProgress": True},
}


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def vscode_capabilities_json(pull: bool) -> dict[str, Any]:
    recorded = resources.files("pytest_lsp.clients").joinpath("visual_studio_code_v1.65.2.json")
    caps = _merge(json.loads(recorded.read_text())["capabilities"], _NEWER)
    if not pull:
        del caps["textDocument"]["diagnostic"]
    return caps


def vscode_capabilities(pull: bool = False) -> types.ClientCapabilities:
    return get_converter().structure(vscode_capabilities_json(pull), types.ClientCapabilities)


def client_info() -> types.ClientInfo:
    return types.ClientInfo(name="Visual Studio Code", version=VSCODE_VERSION)
