#!/usr/bin/env bash
# make demo: the toy datasets, then the main jobs end to end on them (CPU, a few minutes each).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${DEMO_OUT:-work_dirs/demo}
$PY tools/dataset_converters/make_toy_datasets.py data/toy
echo "== stock mmpretrain ResNet-18 on the toy ImageNet (4 shape classes)"
$PY tools/train.py configs/toy/resnet18_1xb16-toy_in1k.py --work-dir "$OUT/resnet18" \
    --cfg-options train_cfg.max_epochs=10 train_cfg.val_interval=10
