# Recipe: mmdet's Mask R-CNN 1x schedule with ViTDet's AdamW optimiser; HPViT publishes no config.
# Mask R-CNN + FPN on COCO, 1x schedule (12 epochs, 800x1333), with HPViT-B built from the official
# MAE ViT-B/16 pretraining (_base_/hpvit-base-p16_dense.py): its four 768-channel maps at strides
# 4/8/16/32 feed a stock FPN. Optimiser as ViTDet: AdamW, wd 0.1, layer decay 0.7 for B.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/hpvit-base-p16_dense.py']
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    neck=dict(in_channels=_base_.stage_dims))

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0.0, bias_decay_mult=0.0))
