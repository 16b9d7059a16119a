# Recipe: dbolya/hiera v0.2.0 hiera/train/config.py, TrainArgs.in1k_finetune (Hiera-L).
# Hiera-Large fine-tuned on ImageNet-1k from its Hiera-MAE pretraining: the Hiera-B recipe with
# this size's settings from dbolya/hiera v0.2.0 (lr 0.001 at batch 1024, 50 epochs, layer decay
# 0.85, drop path 0.1). Official result: 86.1 top-1 (metafile.yml).
_base_ = './hiera-base-p4_8xb128-coslr-100e_in1k.py'

pretrained = 'hvit://hiera-mae_hiera-large-p4'
model = dict(backbone=dict(arch='large', init_cfg=dict(checkpoint=pretrained)),
             head=dict(in_channels=1152))
optim_wrapper = dict(optimizer=dict(lr=0.001), paramwise_cfg=dict(layer_decay_rate=0.85))
train_cfg = dict(max_epochs=50)
