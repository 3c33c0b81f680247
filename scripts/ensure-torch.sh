#!/usr/bin/env bash
# A Python with torch and numpy for the torch trainer (python/oeld_trainer) and its tests:
# OELD_TORCH_PYTHON, python3 or /usr/bin/python3 if one has them; else Debian's python3-torch
# (CPU, installed from apt, no pip download) for /usr/bin/python3. Prints the interpreter.
set -euo pipefail
for py in "${OELD_TORCH_PYTHON:-}" python3 /usr/bin/python3; do
  if [[ -n $py ]] && "$py" -c 'import torch, numpy' 2>/dev/null; then echo "ensure-torch: $py has torch $("$py" -c 'import torch; print(torch.__version__)')"; exit 0; fi
done
echo "ensure-torch: installing python3-torch python3-numpy (Debian packages; needs root and apt)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3-torch python3-numpy >/dev/null
/usr/bin/python3 -c 'import torch, numpy; print("ensure-torch: /usr/bin/python3 has torch", torch.__version__)'
