# Recipe: the MAE paper's ADE20K UperNet recipe (BEiT's segmentation code, 160k).
# UperNet on ADE20K (512x512 crops, 160k iterations, batch 16) with the plain ViT-B/16 from the
# official MAE pretraining laid out as ViTDet (_base_/vit-base-p16_vitdet.py: 14x14-token windows,
# global blocks 2/5/8/11, decomposed relative position, SimpleFeaturePyramid with 768 channels as the
# MAE/BEiT segmentation necks). Optimiser as MAE/BEiT segmentation
# (../_base_/upernet_layer-decay_ade20k.py: AdamW lr 1e-4, wd 0.05, layer decay 0.65, warm-up, then
# poly decay).
_base_ = ['../_base_/upernet_layer-decay_ade20k.py', './_base_/vit-base-p16_vitdet.py']

embed_dims = _base_.embed_dims
model = dict(
    backbone=dict(_base_.backbone, _delete_=True, img_size=512),  # position table resampled once
    neck=dict(_base_.neck, out_channels=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=embed_dims),
    auxiliary_head=dict(in_channels=embed_dims, in_index=2))
