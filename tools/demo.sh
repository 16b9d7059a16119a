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
echo "== MAE pretraining of a small ViT on the toy ImageNet (a few CPU minutes)"
MAE_CFG=configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py
$PY tools/train.py $MAE_CFG --work-dir "$OUT/mae"
PIC="$OUT/pictures"
$PY tools/visualization/vis_reconstruction.py $MAE_CFG "$OUT/mae/iter_600.pth" data/toy/imagenet/val \
    --num 4 --out "$PIC/reconstruction.png"
$PY tools/visualization/vis_curves.py "MAE pretraining=$OUT/mae" --out "$PIC/curves_pretrain.png"
$PY tools/visualization/vis_masks.py --out "$PIC/mask_patterns.png"
echo "== done: $OUT/resnet18 (top-1 in its log); pictures in $PIC (reconstruction, curves, masks)"
