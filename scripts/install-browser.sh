#!/usr/bin/env bash
# Installs the headless browser the dashboard's browser tests drive: Debian's `chromium` and
# `chromium-driver`. Does nothing when both are already there; needs root (or sudo) otherwise.
# A failed install is not fatal here: the browser tests themselves fail loudly under CI and
# print a skip notice elsewhere.
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have chromium && have chromedriver; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if have sudo; then SUDO="sudo -n"; else
        echo "install-browser: not root and no sudo; cannot install chromium" >&2
        exit 0
    fi
fi

echo "install-browser: installing chromium and chromium-driver with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
    echo "install-browser: apt-get update failed" >&2
    exit 0
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; then
    echo "install-browser: apt-get install chromium chromium-driver failed" >&2
    exit 0
fi
have chromium && have chromedriver && echo "install-browser: $(chromium --version 2>/dev/null)" >&2
exit 0
