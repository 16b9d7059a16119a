# Recipe: dbolya/hiera v0.2.0 hiera/train/config.py, TrainArgs.in1k_finetune (Hiera-T).
# Hiera-Tiny fine-tuned on ImageNet-1k from its Hiera-MAE pretraining: the Hiera-B recipe with
# this size's settings from dbolya/hiera v0.2.0 (lr 0.002 at batch 1024, 300 epochs, layer decay
# 0.65, drop path 0.1; final width 768 as B). Official result: 82.8 top-1 (metafile.yml).
_base_ = './hiera-base-p4_8xb128-coslr-100e_in1k.py'

pretrained = 'hvit://hiera-mae_hiera-tiny-p4'
model = dict(backbone=dict(arch='tiny', init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(optimizer=dict(lr=0.002), paramwise_cfg=dict(layer_decay_rate=0.65))
train_cfg = dict(max_epochs=300)
