#!/usr/bin/env bash
# Sets up .venv with the verified OpenMMLab stack on PyTorch 2.14 (see README "Stack").
# Idempotent: a finished install is recorded in .venv/.hvit_mm-installed (keyed on requirements.txt),
# and the mmcv wheel, whose build takes ~11 minutes on 2 cores, is cached in ~/.cache/hvit_mm/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=.venv
CACHE=${HVIT_MM_CACHE:-$HOME/.cache/hvit_mm}
STAMP=$VENV/.hvit_mm-installed
KEY=$(cat requirements.txt pyproject.toml tools/install.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ]; then
  echo "hvit_mm: environment up to date ($VENV)"; exit 0
fi
[ -x $VENV/bin/python ] || "$PY" -m venv $VENV
pip() { $VENV/bin/python -m pip "$@"; }
pin() { grep -E "^$1==" requirements.txt | head -1; }
pip install -q --upgrade pip 'setuptools<81' wheel
# torch first (the cuda build on the local package disk), so later packages never pull another one.
pip install -q "$(pin torch)" "$(pin torchvision)" numpy
pip install -q "$(pin mmengine)"

MMCV_VER=$(pin mmcv | cut -d= -f3)
TORCH_VER=$(pin torch | cut -d= -f3)
WHEEL_DIR=$CACHE/mmcv-$MMCV_VER-torch$TORCH_VER-$($VENV/bin/python -c 'import sys;print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
if ! $VENV/bin/python -c "import mmcv, mmcv.ops" 2>/dev/null; then
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    echo "hvit_mm: building mmcv $MMCV_VER with ops (about 11 minutes on 2 cores, once; cached in $WHEEL_DIR)"
    SRC=$(mktemp -d)
    # no isolation: mmcv's setup.py imports torch and pkg_resources (hence setuptools<81 above)
    pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VER" -d "$SRC"
    tar -xzf "$SRC"/mmcv-$MMCV_VER.tar.gz -C "$SRC"
    # torch 2.14 headers need C++20
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$SRC/mmcv-$MMCV_VER/setup.py"
    mkdir -p "$WHEEL_DIR.tmp"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} pip wheel -q --no-deps --no-build-isolation \
      -w "$WHEEL_DIR.tmp" "$SRC/mmcv-$MMCV_VER"
    rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"   # atomic: a killed build leaves no half cache
    rm -rf "$SRC"
  fi
  pip install -q --no-deps "$WHEEL_DIR"/mmcv-*.whl
  pip install -q addict yapf packaging pyyaml 'opencv-python>=3'
fi
grep -v -E '^(#|torch==|torchvision==|mmengine==|mmcv==|$)' requirements.txt > "$VENV/req-rest.txt"
pip install -q -r "$VENV/req-rest.txt"
pip install -q --no-deps --no-build-isolation -e .
$VENV/bin/python -c "import mmcv.ops, mmdet, mmseg, mmpretrain, hvit_mm; print('hvit_mm: stack OK, mmcv', mmcv.__version__)"
echo "$KEY" > "$STAMP"
