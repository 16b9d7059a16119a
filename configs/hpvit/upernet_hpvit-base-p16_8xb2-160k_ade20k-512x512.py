# Recipe: MAE/BEiT UperNet segmentation recipe (ADE20K, 160k); HPViT publishes no config.
# UperNet on ADE20K (512x512 crops, 160k iterations, batch 16) with HPViT-B from the official MAE
# ViT-B/16 pretraining (_base_/hpvit-base-p16_dense.py) in place of mmseg's R-50; optimiser as
# MAE/BEiT segmentation (../_base_/upernet_layer-decay_ade20k.py: AdamW lr 1e-4, wd 0.05, layer
# decay 0.65, 1500-iteration warm-up, then poly decay).
_base_ = ['../_base_/upernet_layer-decay_ade20k.py', './_base_/hpvit-base-p16_dense.py']

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.stage_dims),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2]))
