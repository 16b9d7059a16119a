# Recipe: ViTDet's Mask R-CNN LSJ 100-epoch recipe; UM-MAE publishes no Mask R-CNN config.
# Mask R-CNN + FPN on COCO with UM-MAE Swin-T (../_base_/swin-tiny-w16_dense.py), ViTDet's
# large-scale-jitter recipe (../../_base_/mask-rcnn_lsj-layer-decay_coco.py: 1024x1024, 100 epochs,
# batch 64, AdamW lr 1e-4, wd 0.1, layer decay 0.7). UM-MAE publishes neither a Mask R-CNN config nor
# its AP (its detection code is GFL); the recipe is ours. Activation checkpointing for the 1024 px
# inputs.
_base_ = ['../../_base_/mask-rcnn_lsj-layer-decay_coco.py', '../_base_/swin-tiny-w16_dense.py']

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, with_cp=True),
    neck=dict(in_channels=_base_.stage_dims))
