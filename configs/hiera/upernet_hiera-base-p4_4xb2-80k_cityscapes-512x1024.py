# Recipe: MAE/BEiT UperNet optimiser, mmseg's Cityscapes 80k schedule; Hiera has none.
# UperNet on Cityscapes (512x1024 crops, 80k iterations, batch 8) with Hiera-B from its Hiera-MAE
# pretraining: the model of the ADE20K config on ../_base_/upernet_layer-decay_cityscapes.py.
_base_ = ['../_base_/upernet_layer-decay_cityscapes.py', './_base_/hiera-base-p4_dense.py']

model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),  # whole-image testing pads to Hiera's
    backbone=dict(_base_.backbone, _delete_=True),           # 32 px units, then crops the padding
    decode_head=dict(in_channels=_base_.stage_dims),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2]))
