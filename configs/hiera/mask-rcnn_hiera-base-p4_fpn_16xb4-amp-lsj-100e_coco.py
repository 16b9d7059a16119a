# Recipe: ViTDet's Mask R-CNN LSJ 100e recipe (the Hiera paper's detection setup).
# Mask R-CNN + FPN on COCO with Hiera-B from its Hiera-MAE pretraining (_base_/hiera-base-p4_dense.py:
# its 96/192/384/768-channel maps at strides 4-32 feed a stock FPN), ViTDet's large-scale-jitter
# recipe as the Hiera paper's detection experiments (../_base_/mask-rcnn_lsj-layer-decay_coco.py:
# 1024x1024, 100 epochs, batch 64, AdamW lr 1e-4, wd 0.1). Layer decay 0.7 and drop path 0.1 follow
# ViTDet-B (the Hiera paper's exact values were not available); activation checkpointing keeps
# stage 1 (65k tokens) in memory.
_base_ = ['../_base_/mask-rcnn_lsj-layer-decay_coco.py', './_base_/hiera-base-p4_dense.py']

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, with_cp=True),
    neck=dict(in_channels=_base_.stage_dims))
