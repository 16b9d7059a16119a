# Recipe: facebookresearch/mae PRETRAIN.md (ViT-B, 1600 epochs), via mmpretrain's MAE config.
# MAE ViT-B/16 pretraining, the official recipe (1600 epochs, effective batch 4096 = 8 GPUs x 512,
# blr 1.5e-4 -> lr 2.4e-3, AdamW (0.9, 0.95), wd 0.05, 40 warm-up epochs, mask 0.75, norm_pix),
# data pipeline and schedule inherited from mmpretrain's MAE config; only the model is hvit_mm's.
_base_ = ['mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py']
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,  # mmpretrain's MAE/MAEViT/MAEPretrainHead -> hvit_mm's algorithm, backbone, decoder
    type='MaskedAutoencoder',
    backbone=dict(type='ViT', arch='base', patch_size=16, img_size=224),
    # encoder width, patch size and grid are read from the backbone at build time
    neck=dict(type='MAEDecoder', decoder_embed_dims=512, decoder_depth=8, decoder_num_heads=16),
    mask_ratio=0.75,
    norm_pix=True)


# no weight decay for norms and biases (1-D params, as official MAE); the inherited custom_keys keep
# pos_embed / mask_token / cls_token out of it. fused AdamW: one kernel for all parameters (2.8x
# faster optimizer step than the per-tensor loop on CPU; supported with AMP's GradScaler on CUDA)
optim_wrapper = dict(optimizer=dict(fused=True), paramwise_cfg=dict(flat_decay_mult=0.0))
