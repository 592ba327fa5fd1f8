#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the store conformance suite on SQLite and
# PostgreSQL, the channel emulator suites and the end-to-end suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
cargo test --workspace --no-fail-fast "$@"
