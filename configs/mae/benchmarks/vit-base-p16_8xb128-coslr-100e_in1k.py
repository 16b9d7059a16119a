# Recipe: facebookresearch/mae FINETUNE.md (ViT-B, 100 epochs).
# Fine-tuning MAE ViT-B/16 on ImageNet (official recipe: 100 epochs, batch 1024, blr 5e-4 -> lr 2e-3,
# layer-wise lr decay 0.65, drop path 0.1, RandAugment m9, mixup 0.8 / cutmix 1.0, label smoothing
# 0.1, random erasing 0.25, global average pooling + fc_norm). Everything but the backbone and the
# optimiser constructor is mmpretrain's MAE fine-tuning config.
_base_ = ['mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py']
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # mmpretrain's VisionTransformer -> hvit_mm's ViT (timm/MAE parameter names)
        type='ViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        final_norm=False,
        # the pretraining run's last checkpoint (hvit_mm or official MAE format both load strictly)
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k/epoch_1600.pth',
            prefix='backbone.')))

optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',  # depths from ViT.get_layer_depth
    paramwise_cfg=dict(layer_decay_rate=0.65, flat_decay_mult=0.0))

# 5 warm-up epochs, then cosine to the last epoch: no `end`/`T_max`, so the Runner ends it at
# train_cfg.max_epochs and the ViT-L/H and MAE-Lite configs change only that
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=5, convert_to_iter_based=True)
]
