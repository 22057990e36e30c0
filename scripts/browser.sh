#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright's own download does not work offline).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing: install Debian's chromium package (sudo apt-get install chromium)" >&2
    fi
fi
