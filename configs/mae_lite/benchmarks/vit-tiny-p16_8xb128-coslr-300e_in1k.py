# Recipe: wangsr126/mae-lite projects/eval_tools/finetuning_exp.py (300 epochs, README).
# Fine-tuning MAE-Lite ViT-Tiny on ImageNet (MAE-Lite's recipe: 300 epochs, batch 1024, lr 1e-3 x
# 1024 / 256 = 4e-3, AdamW (0.9, 0.999), wd 0.05, 5 warm-up epochs, min lr 1e-6, layer decay 0.85,
# RandAugment m10 (mstd 0.5), mixup 0.2, no cutmix, no label smoothing, no random erasing, no drop
# path, global average pooling + fc_norm).
_base_ = ['../../mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py']

model = dict(
    backbone=dict(
        arch='mae-lite-tiny',
        drop_path_rate=0.0,
        init_cfg=dict(checkpoint='work_dirs/mae-lite_vit-tiny-p16_8xb512-amp-coslr-400e_in1k/'
                      'epoch_400.pth')),
    head=dict(in_channels=192, loss=dict(_delete_=True, type='CrossEntropyLoss', use_soft=True)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.2)]))

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=10, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='PackInputs')
]))

optim_wrapper = dict(optimizer=dict(lr=4e-3), paramwise_cfg=dict(layer_decay_rate=0.85))
train_cfg = dict(by_epoch=True, max_epochs=300)
