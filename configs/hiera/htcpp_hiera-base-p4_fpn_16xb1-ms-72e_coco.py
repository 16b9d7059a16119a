# HTC++ (configs/_base_/models/htcpp_fpn.py: Swin-paper HTC with 4conv1fc GN heads, soft-NMS,
# multi-scale 400-1400 training, 72 epochs of AdamW) on COCO with Hiera-B from its Hiera-MAE
# pretraining. Layer decay 0.7 and drop path 0.2 are our choice for a MAE-pretrained B backbone
# (Hiera publishes no HTC++ recipe); activation checkpointing for the up-to-1600 px inputs.
_base_ = '../_base_/models/htcpp_fpn.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

pretrained = 'checkpoints/mae_hiera_base_224.pth'  # see metafile.yml

model = dict(
    backbone=dict(
        _delete_=True,
        type='Hiera',
        arch='base',
        img_size=224,  # the checkpoint's 56x56 position table, resampled to every input in forward
        q_pool=3,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0.0, bias_decay_mult=0.0))
