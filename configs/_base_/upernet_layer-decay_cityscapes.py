# UperNet on Cityscapes (512x1024 crops, 80k iterations, batch 8 = 4 GPUs x 2) with the optimiser of
# upernet_layer-decay_ade20k.py (AdamW lr 1e-4, wd 0.05, layer decay 0.65, 1500-iteration warm-up,
# then poly decay). Model, data and runtime are mmseg's UperNet R-50 Cityscapes config. (mmengine
# lets no two bases set the same key, so the ADE20K base cannot lend its optimiser here.)
_base_ = 'mmseg::upernet/upernet_r50_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(pretrained=None)  # not mmseg's ImageNet ResNet-50

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.65, norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500, end=80000),
]
