# Recipe: wangsr126/mae-lite projects/mae_lite/mae_lite_exp.py (README command, 400 epochs).
# MAE-Lite pretraining of ViT-Tiny (192-d, 12 blocks, 12 heads): MAE with a 96-d, 1-block, 3-head
# decoder, 400 epochs, batch 4096, lr 1.5e-4 x 4096 / 256, AdamW (0.9, 0.95), wd 0.05, 40 warm-up
# epochs, mask 0.75, norm_pix, and RandomResizedCrop scale (0.08, 1) instead of MAE's (0.2, 1).
# (MAE-Lite also draws the resize interpolation at random; bicubic is kept here.)
_base_ = ['../mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py']

model = dict(
    backbone=dict(arch='mae-lite-tiny'),
    neck=dict(decoder_embed_dims=96, decoder_depth=1, decoder_num_heads=3))

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=360, by_epoch=True, begin=40, end=400,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)
