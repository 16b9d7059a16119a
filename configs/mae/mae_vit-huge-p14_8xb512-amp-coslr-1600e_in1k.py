# Recipe: facebookresearch/mae PRETRAIN.md (ViT-H, 1600 epochs), via mmpretrain's MAE config.
# MAE ViT-H/14 pretraining: the ViT-B recipe with the huge encoder (patch 14, 16x16 grid at 224).
_base_ = ['./mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py']

model = dict(backbone=dict(arch='huge', patch_size=14))
