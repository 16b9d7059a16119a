# UperNet on Cityscapes (512x1024 crops, 80k iterations, batch 8) with the ViTDet-style MAE ViT-B/16
# of the ADE20K config (windows of 14 tokens, global blocks 2/5/8/11, decomposed relative position,
# SimpleFeaturePyramid); optimiser as the ADE20K config (AdamW, layer decay 0.65).
_base_ = 'mmseg::upernet/upernet_r50_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

pretrained = 'checkpoints/mae_pretrain_vit_base.pth'  # see metafile.yml

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='ViT',
        arch='base',
        img_size=(512, 1024),  # the crop: global blocks' relative tables are stored for 32x64
        window_size=14,
        global_blocks=(2, 5, 8, 11),
        rel_pos_bias=True,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        type='SimpleFeaturePyramid',
        in_channels=768,
        out_channels=768,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        norm_cfg=dict(type='LN2d', eps=1e-6)),
    decode_head=dict(in_channels=[768, 768, 768, 768], channels=768),
    auxiliary_head=dict(in_channels=768, in_index=2))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, norm_decay_mult=0.0, bias_decay_mult=0.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500, end=80000),
]
