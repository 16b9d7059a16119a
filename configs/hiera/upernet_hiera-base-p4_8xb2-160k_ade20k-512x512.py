# Recipe: MAE/BEiT UperNet recipe (ADE20K, 160k); Hiera publishes none.
# UperNet on ADE20K (512x512 crops, 160k iterations, batch 16) with Hiera-B from its Hiera-MAE
# pretraining (_base_/hiera-base-p4_dense.py) in place of mmseg's R-50; optimiser as MAE/BEiT
# segmentation (../_base_/upernet_layer-decay_ade20k.py: AdamW lr 1e-4, wd 0.05, layer decay 0.65,
# warm-up then poly decay). Hiera publishes no segmentation recipe or result.
_base_ = ['../_base_/upernet_layer-decay_ade20k.py', './_base_/hiera-base-p4_dense.py']

model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),  # whole-image testing pads to Hiera's
    backbone=dict(_base_.backbone, _delete_=True),           # 32 px units, then crops the padding
    decode_head=dict(in_channels=_base_.stage_dims),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2]))
