#!/usr/bin/env bash
# Install Debian's Chromium for the dashboard's browser test (driven by Playwright, which is
# told to use this binary and downloads no browser of its own).
set -euo pipefail
if ! command -v chromium >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The launcher sources /etc/chromium.d, which can print noise on stderr.
chromium --version 2>/dev/null
