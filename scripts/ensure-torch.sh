#!/usr/bin/env bash
# A Python with torch and numpy for the torch trainer (python/oeld_trainer) and its tests:
# OELD_TORCH_PYTHON, python3 or /usr/bin/python3 if one has them; else Debian's python3-torch
# (CPU, installed from apt, no pip download) for /usr/bin/python3. Debian's torch calls the system
# BLAS, which is the slow reference one unless OpenBLAS is installed: libopenblas0-pthread comes
# with it (20x faster matmuls here). Prints the interpreter.
set -euo pipefail
apt_install() {
  echo "ensure-torch: installing $* (Debian packages; needs root and apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "$@" >/dev/null
}
for py in "${OELD_TORCH_PYTHON:-}" python3 /usr/bin/python3; do
  if [[ -n $py ]] && "$py" -c 'import torch, numpy' 2>/dev/null; then
    if dpkg -s python3-torch >/dev/null 2>&1 && ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then apt_install libopenblas0-pthread; fi
    echo "ensure-torch: $py has torch $("$py" -c 'import torch; print(torch.__version__)')"
    exit 0
  fi
done
apt_install python3-torch python3-numpy libopenblas0-pthread
/usr/bin/python3 -c 'import torch, numpy; print("ensure-torch: /usr/bin/python3 has torch", torch.__version__)'
