#!/usr/bin/env bash
# make demo: hvit_mm's main job end to end on CPU (under 15 minutes on 2 cores): toy data, MAE
# pretraining, transfer to Mask R-CNN and UperNet pretrained vs from scratch, pictures, one summary
# table. All in tools/demo.py (one process); DEMO_OUT moves the outputs (default work_dirs/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python tools/demo.py --out "${DEMO_OUT:-work_dirs/demo}" "$@"
