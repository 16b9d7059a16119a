# Recipe: facebookresearch/mae FINETUNE.md (ViT-H, 50 epochs).
# Fine-tuning MAE ViT-H/14 (official: 50 epochs, lr 4e-3 at batch 1024, layer decay 0.75, drop path 0.3).
_base_ = ['./vit-large-p16_8xb128-coslr-50e_in1k.py']

model = dict(
    backbone=dict(
        arch='huge', patch_size=14, drop_path_rate=0.3,
        init_cfg=dict(checkpoint='work_dirs/mae_vit-huge-p14_8xb512-amp-coslr-1600e_in1k/'
                      'epoch_1600.pth')),
    head=dict(in_channels=1280))
