#!/usr/bin/env bash
# Builds the gateway and the benchmark in release mode and runs the benchmark against
# PostgreSQL on 127.0.0.1:5432 (started here if it is down). Arguments go to the benchmark:
#   bash scripts/bench.sh --duration 5 --e2e-burst 10000     (see `--help`)
# Results and how to read them: BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
cargo build --release -p switchboard -p switchboard-bench
# A fresh build leaves hundreds of MB of dirty pages; written back during the first
# measurement, they would compete with its commits' flushes. (First runs after a build measured
# slow; on one machine they still did after this, see BENCHMARKS.md.)
sync
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/bench" --gateway "$target/release/switchboard" "$@"
