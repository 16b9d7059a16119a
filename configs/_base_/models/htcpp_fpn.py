# HTC++ as in the Swin Transformer paper, independent of the backbone: Hybrid Task Cascade (mmdet's
# HTC without the semantic branch, whose COCO-stuff maps are not part of COCO instances) with
# 4conv1fc bounding-box heads with GroupNorm (GIoU loss), soft-NMS at test time, strong multi-scale training
# (shorter side 400-1400, longer side <= 1600) and a 6x (72-epoch) AdamW schedule (lr 1e-4, wd 0.05,
# steps at epochs 63 and 69, batch 16). InstaBoost, the remaining HTC++ ingredient, is left out: it
# needs the separate `instaboostfast` package. A detector config sets the backbone and
# `neck.in_channels`.
_base_ = 'mmdet::htc/htc-without-semantic_r50_fpn_1x_coco.py'


# one head per cascade stage, differing only in target stds: 4 shared convs + 1 fc and a GIoU box loss on decoded boxes (as Swin's
# Cascade Mask R-CNN "4conv1f giou" configs), with the stage's own target stds. GroupNorm (32 groups)
# rather than Swin's SyncBN: batch 1 per GPU makes BN statistics depend on the GPU count, GN does
# not, and it runs unchanged on one GPU or the CPU. The 3x (36-epoch) schedule: htcpp_fpn_3x.py.
# Semantic branch: off (mmdet's htc-without-semantic); with COCO-stuff maps inherit
# mmdet::htc/htc_r50_fpn_1x_coco.py's semantic_roi_extractor/semantic_head and its seg pipeline.
_bbox_head = dict(
    type='ConvFCBBoxHead',
    num_shared_convs=4,
    num_shared_fcs=1,
    in_channels=256,
    conv_out_channels=256,
    fc_out_channels=1024,
    roi_feat_size=7,
    num_classes=80,
    reg_class_agnostic=True,
    reg_decoded_bbox=True,
    norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
model = dict(
    roi_head=dict(bbox_head=[
        dict(_bbox_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                         target_stds=stds))
        for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
    ]),
    test_cfg=dict(rcnn=dict(nms=dict(type='soft_nms', iou_threshold=0.5))))
del _bbox_head  # a building block, not a config key

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(1600, 400), (1600, 1400)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))
max_epochs = 72
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[63, 69],
         gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=16)
