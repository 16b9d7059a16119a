# Recipe: dbolya/hiera v0.2.0 hiera/train/config.py, TrainArgs.in1k_mae (Hiera-B, 1600 epochs).
# Hiera-MAE pretraining of Hiera-B on ImageNet-1k: 60% of the 32x32 px mask units hidden, encoder on
# visible units only (q_pool=2: the last stage stays at stride 16), stage 1/2/4 features fused, 8-block
# 512-d decoder, per-patch normalised pixel loss on 16 px patches. Recipe (dbolya/hiera v0.2.0
# TrainArgs.in1k_mae): AdamW (0.9, 0.95), lr 8e-4 at batch 4096, wd 0.05, 1600 epochs with 40 warm-up
# epochs then cosine, RandomResizedCrop(0.2-1.0, bicubic) + flip, drop path 0.2 (T/S: 0.0, H: 0.3).
# mmpretrain's MAE ViT-B config supplies the data pipeline, schedule and runtime.
_base_ = 'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='MaskedAutoencoder',
    backbone=dict(type='Hiera', arch='base', img_size=224, q_pool=2, drop_path_rate=0.2),
    # stages 1-2 brought to the last stage's stride-16 map and summed (channels from the backbone)
    encoder_neck=dict(type='MultiScaleFusion'),
    # learned positions, patches predicted in the official (C, p, p) order
    neck=dict(type='MAEDecoder', decoder_embed_dims=512, decoder_depth=8, decoder_num_heads=16,
              pos_embed='learned'),
    target_layout='chw',
    mask_ratio=0.6,
    norm_pix=True)


# no weight decay for biases, norms, pos_embed (Hiera.no_weight_decay) and the decoder's mask token /
# position table (HieraMAE.no_weight_decay), read from the models instead of substring rules
optim_wrapper = dict(
    optimizer=dict(lr=8e-4, fused=True),  # one fused kernel for all parameters
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=1.0, norm_decay_mult=0.0,
                       bias_decay_mult=0.0))
