# Recipe: the Swin paper's HTC++ (_base_/models/htcpp_fpn.py); Hiera publishes no HTC++ recipe.
# HTC++ (configs/_base_/models/htcpp_fpn.py: Swin-paper HTC with 4conv1fc GN heads, soft-NMS,
# multi-scale 400-1400 training, 72 epochs of AdamW) on COCO with Hiera-B from its Hiera-MAE
# pretraining (_base_/hiera-base-p4_dense.py). Layer decay 0.7 and drop path 0.2 are our choice for
# a MAE-pretrained B backbone (Hiera publishes no HTC++ recipe); activation checkpointing for the
# up-to-1600 px inputs.
_base_ = ['../_base_/models/htcpp_fpn.py', './_base_/hiera-base-p4_dense.py']
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.2, with_cp=True),
    neck=dict(in_channels=_base_.stage_dims))

optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0.0, bias_decay_mult=0.0))
