# Recipe: facebookresearch/mae FINETUNE.md (ViT-B); HPViT publishes no recipe.
# HPViT-B (stride-4 patch embedding, pools after blocks 1/3/9, windows of 14 tokens in stages 1-2)
# fine-tuned on ImageNet-1k from the official MAE ViT-B/16 pretraining, with MAE's fine-tuning
# recipe (100 epochs, effective batch 1024, lr 2e-3 = blr 5e-4 x 1024/256, layer decay 0.65, wd 0.05,
# drop path 0.1, RandAug + random erasing 0.25 + mixup 0.8 / cutmix 1.0, label smoothing 0.1): the
# data, schedule and augmentation come from mmpretrain's MAE ViT-B fine-tuning config.
_base_ = 'mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

# mae_pretrain_vit_base.pth from https://dl.fbaipublicfiles.com/mae/pretrain/ (CC-BY-NC 4.0); any
# plain-ViT checkpoint hvit_mm converts (MAE, MAE-Lite, timm, hvit_mm's own MAE runs) loads the
# same way
pretrained = 'hvit://mae_vit-base-p16'

model = dict(
    backbone=dict(
        _delete_=True,
        type='HPViT',
        arch='base',
        img_size=224,
        pool='avg',
        attn_types=('window', 'window', 'global', 'global'),
        window_size=14,
        out_indices=(3, ),  # the stride-32 map, through the checkpoint's final norm
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),  # None in the base
    head=dict(in_channels=768))

# hvit_mm's constructor reads HPViT.get_layer_depth (patch/pos embedding 0, blocks.i i+1, the pool
# after block i with block i+1) and no_weight_decay() (pos_embed), instead of substring rules
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        _delete_=True, layer_decay_rate=0.65, norm_decay_mult=0.0, bias_decay_mult=0.0))
