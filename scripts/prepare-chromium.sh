#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (the Locust web UI's "Both queues" tab), with no
# browser download: the package comes from Debian's archive like any other.
#
#   sudo scripts/prepare-chromium.sh     # skipped when a Chromium is already there
#
# The tests look for HARNESS_CHROMIUM, else `chromium` on the PATH (tests/load/conftest.py). Under CI
# (`CI` set) `make test` runs this first, and the browser tests may not skip.
# Exit status: 0 when a Chromium runs headless, 1 with a message otherwise.
set -euo pipefail

found=${HARNESS_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$found" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "prepare-chromium: no Chromium, and installing one needs root: sudo $0" >&2
        exit 1
    fi
    echo "prepare-chromium: apt-get install chromium ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    found=$(command -v chromium)
fi
version=$("$found" --headless=new --no-sandbox --version 2>/dev/null || true)
if [ -z "$version" ]; then
    echo "prepare-chromium: $found does not start (try: $found --headless=new --no-sandbox --version)" >&2
    exit 1
fi
echo "prepare-chromium: $version ($found)"
