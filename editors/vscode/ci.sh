#!/usr/bin/env bash
# Build, lint, test and package the VS Code extension from a clean install.
# Produces editors/vscode/bpf-lsp-<version>.vsix. Needs Node >= 20 and npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

npm ci
npm run compile
npm run lint
npm test
npm run package
