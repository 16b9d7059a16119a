# Recipe: facebookresearch/mae PRETRAIN.md (ViT-L, 1600 epochs), via mmpretrain's MAE config.
# MAE ViT-L/16 pretraining: the ViT-B recipe with the large encoder (same 512-d, 8-block decoder).
_base_ = ['./mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py']

model = dict(backbone=dict(arch='large'))
