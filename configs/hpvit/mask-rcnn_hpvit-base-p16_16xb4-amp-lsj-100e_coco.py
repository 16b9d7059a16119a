# Recipe: ViTDet's Mask R-CNN LSJ 100-epoch recipe (ViT-B settings); HPViT publishes no config.
# Mask R-CNN + FPN on COCO with HPViT-B (_base_/hpvit-base-p16_dense.py: four 768-channel maps at
# strides 4-32 into a stock FPN) and ViTDet's large-scale-jitter recipe
# (../_base_/mask-rcnn_lsj-layer-decay_coco.py: 1024x1024, 100 epochs, batch 64, AdamW lr 1e-4,
# wd 0.1, layer decay 0.7). The 16x16-token windows of strides 4 and 8 are 64 / 128 px; activation
# checkpointing keeps the 256x256-token first stage within GPU memory.
_base_ = ['../_base_/mask-rcnn_lsj-layer-decay_coco.py', './_base_/hpvit-base-p16_dense.py']

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, with_cp=True),
    neck=dict(in_channels=_base_.stage_dims))
