#!/usr/bin/env bash
# Makes `prometheus` and `promtool` available for test/monitoring.test.ts, which runs its own
# Prometheus on a free localhost port with its own storage in a temporary folder.
# Installs Debian's `prometheus` package when either is missing (needs root and apt). Idempotent.
# The package would start a system Prometheus on port 9090: this script keeps it from starting
# (policy-rc.d during the install) and stops and disables it if it runs anyway, so nothing of
# ours is left listening on 9090.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }

stop_system_service() {
  if have systemctl && [[ -d /run/systemd/system ]]; then
    systemctl stop prometheus.service >/dev/null 2>&1 || true
    systemctl disable prometheus.service >/dev/null 2>&1 || true
  fi
  if [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    have update-rc.d && update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  # Without an init system the package's daemon may still have been started by hand or by a
  # fallback: end only the one started from the packaged binary as the prometheus user.
  if have pgrep; then
    for pid in $(pgrep -u prometheus -x prometheus 2>/dev/null || true); do kill "$pid" 2>/dev/null || true; done
  fi
}

if have prometheus && have promtool; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-prometheus: prometheus/promtool missing; run as root to install Debian's prometheus package" >&2
  exit 1
fi
echo "ensure-prometheus: installing Debian's prometheus package (for test/monitoring.test.ts; its system service is not started)"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101: maintainer scripts must not start services during this install.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  own_policy=1
fi
cleanup() { if ((own_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT
# Another apt run (e.g. scripts/ensure-postgres.sh) may hold the dpkg lock: wait for it.
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
stop_system_service
have prometheus && have promtool || { echo "ensure-prometheus: prometheus or promtool still missing after the install" >&2; exit 1; }
echo "ensure-prometheus: $(prometheus --version 2>&1 | head -1)"
