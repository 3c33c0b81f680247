#!/usr/bin/env bash
# A virtual environment with torch and Hugging Face transformers, for the parity test against
# transformers (test/hf-parity.test.ts): .build/venv-hf, installed from this machine's pip package
# index only (no network); kept between runs. Fails naming what is missing when the index lacks it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/venv-hf
if [[ -x $venv/bin/python ]] && $venv/bin/python -c 'import torch, transformers, numpy' 2>/dev/null; then
  echo "ensure-transformers: $venv has torch $($venv/bin/python -c 'import torch; print(torch.__version__)'), transformers $($venv/bin/python -c 'import transformers; print(transformers.__version__)')"
  exit 0
fi
py=$(command -v python3.11 || command -v python3)
rm -rf "$venv"
"$py" -m venv "$venv"
# The indexes pip is configured with (global.extra-index-url) without the public one, which cannot be reached.
indexes=$(pip config get global.extra-index-url 2>/dev/null || true)
args=()
first=1
for i in $indexes; do if ((first)); then args+=(--index-url "$i"); first=0; else args+=(--extra-index-url "$i"); fi; done
echo "ensure-transformers: installing torch, transformers, numpy into $venv from ${indexes:-the default index}"
if ! "$venv/bin/pip" install -q "${args[@]}" torch numpy transformers safetensors; then
  echo "ensure-transformers: this machine's package index lacks torch or transformers for $($py --version)" >&2
  exit 1
fi
$venv/bin/python -c 'import torch, transformers; print("ensure-transformers:", torch.__version__, transformers.__version__)'
