#!/usr/bin/env bash
# Makes sure headless Chromium is available at /usr/bin/chromium for the browser test of the
# status page (test/status-page.test.ts): installs Debian's chromium package when it is missing.
# Idempotent: does nothing when /usr/bin/chromium already runs.
set -euo pipefail
bin=/usr/bin/chromium
if [[ -x $bin ]] && "$bin" --version >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-chromium: $bin is missing and installing Debian's chromium needs root (run: sudo bash scripts/ensure-chromium.sh)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $bin is missing and there is no apt-get; install Chromium so that $bin exists" >&2
  exit 1
fi
echo "ensure-chromium: $bin missing; installing Debian's chromium (apt-get, needs root)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
if ! "$bin" --version >/dev/null 2>&1; then
  echo "ensure-chromium: chromium was installed but $bin does not run" >&2
  exit 1
fi
echo "ensure-chromium: $("$bin" --version) ready at $bin"
