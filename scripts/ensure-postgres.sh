#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 (the tests create a database per test there),
# starting the local cluster if it is down. Fails loudly when it cannot.
set -euo pipefail

host=127.0.0.1
port=5432

ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -h "$host" -p "$port" -q
    else
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
    fi
}

if ready; then
    echo "PostgreSQL is up on $host:$port"
    exit 0
fi

echo "PostgreSQL is not answering on $host:$port; starting the local cluster"
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
fi
for _ in $(seq 1 30); do
    if ready; then
        echo "PostgreSQL is up on $host:$port"
        exit 0
    fi
    sleep 1
done
echo "ERROR: PostgreSQL is unreachable on $host:$port; the test suite needs it (TEST_DATABASE_URL)." >&2
exit 1
