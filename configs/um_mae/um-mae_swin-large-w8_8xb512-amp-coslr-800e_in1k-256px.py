# Recipe: implus/UM-MAE PRETRAIN.md / Makefile (Swin-L, 800 epochs).
# UM-MAE pretraining of Swin-L (window 8 on the compact map), 800 epochs with 40 warm-up epochs and
# an 8-block decoder; batch 4096 (officially 64 x 8 accumulation x 8 GPUs). Official result after
# 100-epoch fine-tuning: 85.2 top-1 (metafile.yml).
_base_ = './_base_/um-mae_8xb512-amp-coslr_in1k-256px.py'

model = dict(backbone=dict(arch='large'), neck=dict(decoder_depth=8))
max_epochs = 800
warmup_epochs = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
