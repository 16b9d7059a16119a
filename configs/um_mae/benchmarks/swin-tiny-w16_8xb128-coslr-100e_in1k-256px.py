# Recipe: implus/UM-MAE FINETUNE.md / Makefile (Swin-T, 100 epochs).
# Fine-tuning UM-MAE Swin-T on ImageNet-1k at 256x256, the UM-MAE recipe (MAE's fine-tuning code):
# 100 epochs (5 warm-up, then cosine), batch 1024, blr 5e-4 -> lr 2e-3, AdamW wd 0.05, layer decay
# 0.85, drop path 0.1, RandAugment m9, mixup 0.8 / cutmix 1.0 (as mmpretrain's Swin recipe), label
# smoothing 0.1, random erasing 0.25; eval resize 292 -> crop 256. Window 16 on the full 64x64-token
# map. Everything but the backbone, the image size and the layer decay is the MAE fine-tuning config.
# The pretrained-and-fine-tuned official file is hvit://um-mae_swin-tiny_ft-in1k (82.04, metafile.yml).
_base_ = '../../mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

img_size = 256
model = dict(
    backbone=dict(
        _delete_=True,  # hvit_mm's ViT -> UM-MAE's Swin (loads official UM-MAE files strictly)
        type='UMSwin',
        arch='tiny',
        img_size=img_size,
        window_size=16,
        drop_path_rate=0.1,
        out_indices=(3, ),
        out_type='avg_featmap',  # fc_norm of the mean last-stage token, the official head input
        # the output of ../um-mae_swin-tiny-w8_8xb512-amp-coslr-200e_in1k-256px.py
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/um-mae_swin-tiny-w8_8xb512-amp-coslr-200e_in1k-256px/epoch_200.pth',
            prefix='backbone.')),
    head=dict(in_channels=768))

# 256 px crops (the MAE config's 224 otherwise); 292 = 256 / 0.875 for evaluation
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),
    dict(type='PackInputs'),
]))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=292, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# UMBackbone.layer_depth: patch embedding 0, block i its flat index + 1 (a stage's merge with its
# first block), fc_norm and head last; no weight decay for 1-D parameters (UMBackbone.no_weight_decay)
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.85, flat_decay_mult=0.0))
