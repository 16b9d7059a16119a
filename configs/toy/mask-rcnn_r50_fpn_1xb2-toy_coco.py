# Recipe: mmdet's mask-rcnn_r50_fpn_1x_coco, shortened for the toy COCO (smoke test).
# Stock mmdet Mask R-CNN R-50 FPN on the toy COCO (tools/dataset_converters/make_toy_datasets.py):
# the smoke test of the detection stack, and the base the toy runs of hvit_mm backbones swap into.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

data_root = 'data/toy/coco/'
classes = ('sports ball', 'kite', 'tv', 'clock')
metainfo = dict(classes=classes)
img_scale = (160, 128)

model = dict(
    backbone=dict(init_cfg=None),  # no download: trained from scratch on the toy set
    roi_head=dict(bbox_head=dict(num_classes=len(classes)),
                  mask_head=dict(num_classes=len(classes))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=12, val_interval=4)
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=4, max_keep_ckpts=2))
