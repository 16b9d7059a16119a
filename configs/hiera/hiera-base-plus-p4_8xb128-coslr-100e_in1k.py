# Recipe: dbolya/hiera v0.2.0 hiera/train/config.py, TrainArgs.in1k_finetune (Hiera-B+).
# Hiera-Base+ fine-tuned on ImageNet-1k from its Hiera-MAE pretraining: the Hiera-B recipe with
# this size's settings from dbolya/hiera v0.2.0 (lr 0.001 at batch 1024, 100 epochs, layer decay
# 0.7, drop path 0.1). Official result: 85.2 top-1 (metafile.yml).
_base_ = './hiera-base-p4_8xb128-coslr-100e_in1k.py'

pretrained = 'hvit://hiera-mae_hiera-base-plus-p4'
model = dict(backbone=dict(arch='base_plus', init_cfg=dict(checkpoint=pretrained)),
             head=dict(in_channels=896))
optim_wrapper = dict(optimizer=dict(lr=0.001))
