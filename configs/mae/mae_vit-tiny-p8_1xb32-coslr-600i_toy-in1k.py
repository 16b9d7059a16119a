# Recipe: hvit_mm's own, sized for the toy ImageNet on CPU (not a paper recipe).
# A small MAE that visibly learns in a few CPU minutes on the toy ImageNet (make demo, tests):
# ViT 128-d x 4 blocks (4 heads) on 64 px crops with 8 px patches (64 tokens, 16 visible), a 64-d
# 1-block decoder, 600 iterations of batch 32 with a short warm-up and cosine decay.
# Make the data with: python tools/dataset_converters/make_toy_datasets.py data/toy
_base_ = ['./mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py']

model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=128, depth=4, num_heads=4), patch_size=8,
                  img_size=64),
    neck=dict(decoder_embed_dims=64, decoder_depth=1, decoder_num_heads=2))

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    # the toy set is one batch: repeat it, as mmengine's iteration loop pauses ~2 s per epoch
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=200,
        dataset=dict(
            type='ImageNet',
            data_root='data/toy/imagenet',
            split='train',
            metainfo=dict(classes=('circle', 'square', 'triangle', 'star')),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.4, 1.0),
                     backend='pillow', interpolation='bicubic'),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackInputs')
            ])))

optim_wrapper = dict(
    _delete_=True,  # AmpOptimWrapper -> OptimWrapper: CPU-friendly float32
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0.0, custom_keys={
        'pos_embed': dict(decay_mult=0.0), 'mask_token': dict(decay_mult=0.0),
        'cls_token': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=570, by_epoch=False, begin=30, end=600, eta_min=1e-5)
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=600)
# two checkpoints kept: mmengine deletes the oldest before writing the next, so with one a run
# killed while saving would have nothing complete to resume from
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False)
resume = False
