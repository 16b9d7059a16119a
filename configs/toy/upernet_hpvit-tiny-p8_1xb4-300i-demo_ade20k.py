# Recipe: hvit_mm's own (make demo): the toy UperNet with HPViT, narrow heads, AdamW, CPU-sized.
# The segmentation transfer of `make demo` (tools/demo.py): UperNet on the demo's toy ADE20K (128 px
# images, 2-5 shapes each, in data/demo), backbone HPViT initialised from the demo's MAE
# pretraining (./_base_/hpvit-tiny-p8_demo.py); from scratch: --cfg-options
# model.backbone.init_cfg=None (the demo trains both, same seed, data and schedule). Pipeline as the
# toy R-50 config's (96 px crops), heads narrowed to 64 channels (auxiliary 32).
_base_ = ['./upernet_r50_1xb2-toy_ade20k.py', './_base_/hpvit-tiny-p8_demo.py']

iters = 300
data_root = _base_.demo_data + '/ade/ADEChallengeData2016'
model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.stage_dims, channels=64),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2], channels=32))

train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # heads at 10x the lr (as SegFormer): Adam's steps are ~lr whatever the gradient, and the
    # logits of the 145 ADE20K classes the toy set lacks must fall by several units
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'pos_embed': dict(decay_mult=0.0),
                                    'decode_head': dict(lr_mult=10.0),
                                    'auxiliary_head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=iters - 30, by_epoch=False, begin=30, end=iters,
         eta_min=1e-6)
]
train_cfg = dict(max_iters=iters, val_interval=iters)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=iters, max_keep_ckpts=1))
randomness = dict(seed=0)
