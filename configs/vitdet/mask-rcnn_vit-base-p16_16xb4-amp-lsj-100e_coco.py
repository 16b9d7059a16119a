# ViTDet: Mask R-CNN on COCO with the plain ViT-B/16 from the official MAE pretraining. The backbone
# attends in 14x14-token windows except 4 global blocks (2, 5, 8, 11), with decomposed relative
# position (zero-initialised); SimpleFeaturePyramid builds strides 4-32 (+ a pooled 64) from its
# single stride-16 map. ViTDet's large-scale-jitter recipe: 1024x1024 crops of 0.1-2.0x rescaled
# images, 100 epochs (mmdet's lsj-100e: 25 epochs of a 4x repeated set), batch 64, AdamW lr 1e-4,
# wd 0.1, layer decay 0.7, drop path 0.1, 250-iteration warm-up, steps at ~89% / 96%; 2-conv RPN
# and 4conv1fc box head with LayerNorm as ViTDet. Activation checkpointing keeps the 64x64-token
# global blocks within GPU memory (CPU forward+backward peak: docs/benchmarks.md).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::common/lsj-100e_coco-instance.py',
]
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

pretrained = 'checkpoints/mae_pretrain_vit_base.pth'  # see metafile.yml
image_size = (1024, 1024)
norm_cfg = dict(type='LN2d', eps=1e-6)  # channel LayerNorm (hvit_mm), as ViTDet's neck and heads

model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='ViT',
        arch='base',
        img_size=image_size,  # position table resampled once from the checkpoint's 14x14 grid
        window_size=14,
        global_blocks=(2, 5, 8, 11),
        rel_pos_bias=True,
        drop_path_rate=0.1,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

# ViTDet tests at the training size: longer side 1024 (the base's 1333x800 is a ResNet habit)
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=4, num_workers=4)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0.0, bias_decay_mult=0.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=25, milestones=[22, 24], gamma=0.1),
]

auto_scale_lr = dict(base_batch_size=64)
