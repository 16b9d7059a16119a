# Recipe: LayneH/GreenMIM scripts/srun_greenmim_swin_base.sh (800 epochs).
# GreenMIM pretraining of Swin-B (window 7) on ImageNet-1k, the recipe of LayneH/GreenMIM
# (scripts/srun_greenmim_swin_base.sh): 800 epochs (40 warm-up, then cosine to 0), batch 2048 =
# 8 GPUs x 256, blr 1e-4 -> lr 8e-4, AdamW (0.9, 0.95), wd 0.05 except biases, norms, the relative
# position bias tables and the tokens, AMP, RandomResizedCrop(224, 0.2-1.0, bicubic) + flip (the
# data pipeline, runtime and AMP wrapper are mmpretrain's MAE config). GreenMIM is hvit_mm's one
# MaskedAutoencoder: 75% of the 32 px units (Swin-B's final stride) hidden, the encoder runs on the
# visible ones only (group window attention), a 1-block 512-d decoder predicts each hidden unit's
# 32x32 pixels, MSE on per-patch normalised pixels of the hidden units. Masks are drawn per sample
# (batch_mask=True gives the official one mask per batch). The Swin-B w14 / Swin-L w14 / SimMIM
# configs change only what differs from this one.
_base_ = 'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,  # mmpretrain's MAE, MAEViT, MAEPretrainHead -> hvit_mm's algorithm and parts
    type='MaskedAutoencoder',
    # out_indices=(3,): only the last stage's norm is built, so every parameter gets a gradient
    # (DDP); LN eps 1e-6 and no drop path, as the official pretraining
    backbone=dict(type='GreenSwin', arch='base', img_size=224, window_size=7, drop_path_rate=0.0,
                  out_indices=(3, ), norm_cfg=dict(type='LN', eps=1e-6)),
    # encoder width, 32 px patches and the 7x7 prediction grid are read from the backbone
    neck=dict(type='MAEDecoder', decoder_embed_dims=512, decoder_depth=1, decoder_num_heads=16),
    mask_ratio=0.75,
    norm_pix=True)

train_dataloader = dict(batch_size=256)

# no weight decay for 1-D parameters (biases, norms: flat_decay_mult) and for the names the models
# declare (GreenSwin: relative_position_bias_table; the algorithm: mask tokens, decoder positions),
# the official `position_bias` / `token` skip list; layer_decay_rate=1.0: one lr for all
optim_wrapper = dict(
    optimizer=dict(lr=1e-4 * 2048 / 256, fused=True),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=1.0, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=40, convert_to_iter_based=True)
]  # the cosine runs to train_cfg.max_epochs (no `end`/`T_max`)
train_cfg = dict(max_epochs=800)
auto_scale_lr = dict(base_batch_size=2048)
