#!/usr/bin/env bash
# Creates the virtual environment and installs dca into it (editable), torch's CPU wheel first
# so that no dependency resolves a CUDA build. Idempotent: `make` calls it only when
# pyproject.toml is newer than the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${DCA_TORCH_VERSION:-2.13.0}

"$PYTHON" - <<'PY' || { echo "dca needs Python >= 3.10 (set PYTHON=/path/to/python3.x)" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "[dca] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$TORCH_VERSION') else 1)" 2>/dev/null; then
  echo "[dca] installing torch==$TORCH_VERSION (CPU)"
  "${PIP[@]}" install -q "${links[@]}" "torch==$TORCH_VERSION" \
    || "${PIP[@]}" install -q --index-url https://download.pytorch.org/whl/cpu "torch==$TORCH_VERSION"
fi
echo "[dca] installing dca and its dependencies (editable)"
# pip's own exit status decides; only its noise about absent local wheel folders is filtered
"${PIP[@]}" install -q "${links[@]}" -e '.[dev]' 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) \
  || { echo "[dca] pip install failed (see above)" >&2; exit 1; }
"$VENV/bin/python" -c "import dca, torch, transformers, chromadb, langgraph, llama_index.core" \
  || { echo "[dca] install incomplete: a core dependency does not import" >&2; exit 1; }
touch "$VENV/.installed"
echo "[dca] environment ready in $(( $(date +%s) - start )) s"
