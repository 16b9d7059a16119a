# Recipe: hvit_mm's own (make demo): the toy Mask R-CNN with HPViT, narrow heads, AdamW, CPU-sized.
# The detection transfer of `make demo` (tools/demo.py): Mask R-CNN + FPN on the demo's toy COCO
# (128 px images, 2-5 shapes each, in data/demo), backbone HPViT initialised from the demo's MAE
# pretraining (./_base_/hpvit-tiny-p8_demo.py); from scratch: --cfg-options
# model.backbone.init_cfg=None (the demo trains both, same seed, data and schedule). Heads as the
# toy R-50 config's, narrowed (FPN 64 channels, 64 RoIs, 256-d fcs, 2 mask convolutions) so a CPU
# iteration is ~0.4 s.
_base_ = ['./mask-rcnn_r50_fpn_1xb2-toy_coco.py', './_base_/hpvit-tiny-p8_demo.py']

iters = 300
data_root = _base_.demo_data + '/coco/'
neck_dims = 64
model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    neck=dict(in_channels=_base_.stage_dims, out_channels=neck_dims),
    rpn_head=dict(in_channels=neck_dims, feat_channels=neck_dims),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=neck_dims),
        bbox_head=dict(in_channels=neck_dims, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=neck_dims),
        mask_head=dict(num_convs=2, in_channels=neck_dims, conv_out_channels=neck_dims)),
    # 64 sampled RoIs per image (16 positives) for 2-5 objects; the mask head on the positives
    # was most of a CPU iteration with mmdet's 512 RoIs and 4 convolutions
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=50)))

train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=iters - 30, by_epoch=False, begin=30, end=iters,
         eta_min=1e-6)
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(by_epoch=False, interval=iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
