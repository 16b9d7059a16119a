# Mask R-CNN + FPN on COCO with Hiera-B from its Hiera-MAE pretraining, ViTDet's large-scale-jitter
# recipe as the Hiera paper's detection experiments: 1024x1024 crops of 0.1-2.0x rescaled images,
# 100 epochs (mmdet's lsj-100e: 25 epochs of a 4x repeated set), batch 64, AdamW lr 1e-4, wd 0.1,
# 250-iteration warm-up, steps at ~89% / 96%. Layer decay 0.7 and drop path 0.1 follow ViTDet-B (the
# Hiera paper's exact values were not available). Hiera's four maps (96/192/384/768 channels at
# strides 4/8/16/32, spatial order) feed a stock FPN; the 56x56 position table is resampled to the
# 256x256 token grid in forward; activation checkpointing keeps stage 1 (65k tokens) in memory.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::common/lsj-100e_coco-instance.py',
]
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

pretrained = 'checkpoints/mae_hiera_base_224.pth'  # see metafile.yml
image_size = (1024, 1024)

model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='Hiera',
        arch='base',
        img_size=224,
        q_pool=3,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))

train_dataloader = dict(batch_size=4, num_workers=4)

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
