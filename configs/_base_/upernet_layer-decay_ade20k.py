# UperNet on ADE20K (512x512 crops, 160k iterations, batch 16 = 8 GPUs x 2) with the optimiser of
# MAE/BEiT segmentation, independent of the backbone: AdamW lr 1e-4, wd 0.05, layer-wise lr decay
# 0.65, no weight decay on norms and biases, 1500-iteration linear warm-up, then poly decay to 0.
# Model, data and runtime are mmseg's UperNet R-50 ADE20K config; a segmentation config replaces
# `model.backbone` (and the heads' `in_channels`), whose own `init_cfg` loads its checkpoint.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(pretrained=None)  # not mmseg's ImageNet ResNet-50
train_dataloader = dict(batch_size=2)

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.65, norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500, end=160000),
]
