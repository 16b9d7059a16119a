# Recipe: MAE/BEiT UperNet optimiser, mmseg's Cityscapes 80k schedule.
# UperNet on Cityscapes (512x1024 crops, 80k iterations, batch 8) with the ViTDet-style MAE ViT-B/16:
# the model of the ADE20K config on ../_base_/upernet_layer-decay_cityscapes.py.
_base_ = ['../_base_/upernet_layer-decay_cityscapes.py', './_base_/vit-base-p16_vitdet.py']

embed_dims = _base_.embed_dims
model = dict(
    backbone=dict(_base_.backbone, _delete_=True,
                  img_size=(512, 1024)),  # the crop: global blocks' relative tables are for 32x64
    neck=dict(_base_.neck, out_channels=embed_dims),
    decode_head=dict(in_channels=[embed_dims] * 4, channels=embed_dims),
    auxiliary_head=dict(in_channels=embed_dims, in_index=2))
