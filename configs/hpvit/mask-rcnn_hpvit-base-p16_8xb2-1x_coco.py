# Mask R-CNN + FPN on COCO, 1x schedule (12 epochs, 800x1333), with HPViT-B built from the official
# MAE ViT-B/16 pretraining: its four 768-channel maps at strides 4/8/16/32 feed a stock FPN.
# Optimiser as ViTDet: AdamW, wd 0.1, layer decay 0.7 for B, drop path 0.1.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

pretrained = 'checkpoints/mae_pretrain_vit_base.pth'  # see metafile.yml

model = dict(
    backbone=dict(
        _delete_=True,
        type='HPViT',
        arch='base',
        img_size=224,  # the checkpoint's 14x14 position grid, resampled to every input in forward
        pool='conv',
        attn_types=('window', 'window', 'global', 'global'),
        window_size=16,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[768, 768, 768, 768]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0.0, bias_decay_mult=0.0))
