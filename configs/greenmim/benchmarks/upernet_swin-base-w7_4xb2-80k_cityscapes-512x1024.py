# Recipe: mmseg's Swin UperNet optimiser, mmseg's Cityscapes 80k schedule; GreenMIM has none.
# UperNet on Cityscapes (512x1024 crops, 80k iterations, batch 8) with GreenMIM Swin-B (window 7) as
# mmseg's stock SwinTransformer: the model and optimiser of the ADE20K config on
# ../../_base_/upernet_layer-decay_cityscapes.py.
_base_ = ['../../_base_/upernet_layer-decay_cityscapes.py', '../_base_/swin-base-w7_stock.py']

model = dict(
    backbone=dict(_base_.greenmim_swin, _delete_=True),
    decode_head=dict(in_channels=_base_.stage_dims),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2]))
optim_wrapper = dict(_base_.seg_optim_wrapper, _delete_=True)
