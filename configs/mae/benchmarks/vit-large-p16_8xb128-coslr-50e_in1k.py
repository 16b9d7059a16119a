# Recipe: facebookresearch/mae FINETUNE.md (ViT-L, 50 epochs).
# Fine-tuning MAE ViT-L/16 (official: 50 epochs, blr 1e-3 -> lr 4e-3 at batch 1024, layer decay 0.75,
# drop path 0.2); the rest as the ViT-B fine-tuning config.
_base_ = ['./vit-base-p16_8xb128-coslr-100e_in1k.py']

model = dict(
    backbone=dict(
        arch='large', drop_path_rate=0.2,
        init_cfg=dict(checkpoint='work_dirs/mae_vit-large-p16_8xb512-amp-coslr-1600e_in1k/'
                      'epoch_1600.pth')),
    head=dict(in_channels=1024))
optim_wrapper = dict(optimizer=dict(lr=4e-3), paramwise_cfg=dict(layer_decay_rate=0.75))
train_cfg = dict(by_epoch=True, max_epochs=50)
