# Recipe: the ViTDet paper's Mask R-CNN ViT-B recipe (detectron2, LSJ 1024, 100 epochs).
# ViTDet: Mask R-CNN on COCO with the plain ViT-B/16 from the official MAE pretraining
# (_base_/vit-base-p16_vitdet.py: windowed attention with 4 global blocks, decomposed relative
# position, SimpleFeaturePyramid for strides 4-32 plus a pooled 64) and ViTDet's large-scale-jitter
# recipe (../_base_/mask-rcnn_lsj-layer-decay_coco.py: 1024x1024, 100 epochs, batch 64, AdamW lr
# 1e-4, wd 0.1, layer decay 0.7), drop path 0.1; 2-conv RPN and 4conv1fc box head with LayerNorm as
# ViTDet, which also tests at the training size (longer side 1024, not the base's ResNet 1333x800).
# Activation checkpointing keeps the 64x64-token global blocks within GPU memory (CPU
# forward+backward peak: docs/benchmarks.md).
_base_ = ['../_base_/mask-rcnn_lsj-layer-decay_coco.py', './_base_/vit-base-p16_vitdet.py']

norm_cfg = _base_.neck.norm_cfg  # channel LayerNorm in the neck and the heads
model = dict(
    backbone=dict(_base_.backbone, _delete_=True, with_cp=True,
                  img_size=_base_.image_size),  # position table resampled once from 14x14
    neck=dict(_base_.neck, _delete_=True, out_channels=256, num_outs=5),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=_base_.image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
