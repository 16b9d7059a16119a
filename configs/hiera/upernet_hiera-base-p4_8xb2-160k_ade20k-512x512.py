# UperNet on ADE20K (512x512 crops, 160k iterations, batch 16) with Hiera-B from its Hiera-MAE
# pretraining, in mmseg's Swin UperNet setting (its model, data and schedule; Hiera replaces Swin-B).
# Optimiser as MAE/BEiT segmentation: AdamW lr 1e-4, wd 0.05, layer decay 0.65, drop path 0.1,
# 1500-iteration linear warm-up then poly decay. Hiera publishes no segmentation recipe or result.
_base_ = 'mmseg::swin/swin-base-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

pretrained = 'checkpoints/mae_hiera_base_224.pth'  # see metafile.yml

model = dict(
    # whole-image testing pads to a multiple of 32 (Hiera's mask units); the padding is cropped off
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),
    backbone=dict(
        _delete_=True,
        type='Hiera',
        arch='base',
        img_size=224,  # the checkpoint's 56x56 position table, resampled to every input in forward
        q_pool=3,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, norm_decay_mult=0.0, bias_decay_mult=0.0))
