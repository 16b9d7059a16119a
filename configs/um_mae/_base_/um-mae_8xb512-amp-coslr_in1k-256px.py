# The UM-MAE pretraining recipe (implus/UM-MAE README), shared by every UM-MAE and dense-baseline
# config: 256x256 RandomResizedCrop(0.2-1.0, bicubic) + flip, batch 4096 (8 GPUs x 512; officially
# 128 x 4 accumulation x 8), AdamW (0.9, 0.95), blr 1.5e-4 -> lr = blr x 4096 / 256 = 2.4e-3, wd 0.05,
# 200 epochs with 10 warm-up epochs then cosine, mask ratio 0.75 drawn as one kept 16 px unit per 2x2
# (uniform sampling), a quarter of the kept units replaced by the mask token (secondary masking),
# per-patch normalised pixel loss, 512-d 2-block decoder. Model here: Swin-T (window 8 on the compact
# 32x32 map). Data pipeline and runtime are mmpretrain's MAE config; variants override only what
# differs (backbone, decoder depth, epochs, algorithm type).
_base_ = 'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

img_size = 256
model = dict(
    _delete_=True,  # mmpretrain's MAE/MAEViT/MAEPretrainHead -> hvit_mm's algorithm and backbone
    type='MaskedAutoencoder',
    # the encoder runs on the compacted 128x128 px (32x32-token) image, hence window 8 (16 at
    # fine-tuning on the full 64x64-token map covers the same image area)
    backbone=dict(type='UMSwin', arch='tiny', img_size=img_size, window_size=8, out_indices=(3, )),
    # encoder width, unit size and grid are read from the backbone at build time
    neck=dict(type='MAEDecoder', decoder_embed_dims=512, decoder_depth=2, decoder_num_heads=16),
    mask_ratio=0.75,
    mask_type='uniform',
    secondary_ratio=0.25,
    norm_pix=True)

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]))

# no weight decay for 1-D parameters (norms, biases) as official MAE/UM-MAE; fused AdamW: one kernel
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 4096 / 256, fused=True),
                     paramwise_cfg=dict(flat_decay_mult=0.0))
max_epochs = 200
warmup_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
