# Hiera-Small fine-tuned on ImageNet-1k from its Hiera-MAE pretraining: the Hiera-B recipe with
# this size's settings from dbolya/hiera v0.2.0 (lr 0.002 at batch 1024, 200 epochs, layer decay
# 0.65, drop path 0.1). Official result: 83.8 top-1 (metafile.yml).
_base_ = './hiera-base-p4_8xb128-coslr-100e_in1k.py'

pretrained = 'checkpoints/mae_hiera_small_224.pth'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.1,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(in_channels=768))
optim_wrapper = dict(optimizer=dict(lr=0.002), paramwise_cfg=dict(layer_decay_rate=0.65))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=195, by_epoch=True, begin=5, end=200, eta_min=1e-6,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=200)
