# Recipe: MAE/BEiT UperNet recipe (ADE20K, 160k), not UM-MAE's SEG/ one (layer decay 1.0).
# UperNet on ADE20K (512x512 crops, 160k iterations, batch 16) with UM-MAE Swin-T
# (../_base_/swin-tiny-w16_dense.py); optimiser as MAE/BEiT segmentation
# (../../_base_/upernet_layer-decay_ade20k.py: AdamW lr 1e-4, wd 0.05, layer decay 0.65, warm-up then
# poly decay). The paper's ADE20K mIoU is not in the UM-MAE repository.
_base_ = ['../../_base_/upernet_layer-decay_ade20k.py', '../_base_/swin-tiny-w16_dense.py']

model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),  # whole-image testing: stride-32 maps
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.stage_dims),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2]))
