# Recipe: MAE/BEiT UperNet optimiser, mmseg's Cityscapes 80k schedule; HPViT has none.
# UperNet on Cityscapes (512x1024 crops, 80k iterations, batch 8) with HPViT-B from the official MAE
# ViT-B/16 pretraining: the model of the ADE20K config on ../_base_/upernet_layer-decay_cityscapes.py.
_base_ = ['../_base_/upernet_layer-decay_cityscapes.py', './_base_/hpvit-base-p16_dense.py']

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.stage_dims),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2]))
