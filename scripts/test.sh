#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the store conformance suite on SQLite and
# PostgreSQL, the channel emulator suites, the end-to-end suites and the dashboard's
# browser tests (headless Chromium, installed by scripts/install-browser.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
bash scripts/install-browser.sh
cargo test --workspace --no-fail-fast "$@"
