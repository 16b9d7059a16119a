# Recipe: mmseg's upernet_r50_4xb4-80k_ade20k-512x512, shortened (smoke test).
# Stock mmseg UperNet R-50 on the toy ADE20K: the smoke test of the segmentation stack.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

data_root = 'data/toy/ade/ADEChallengeData2016'
crop_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN needs a distributed GPU run

model = dict(
    pretrained=None,  # no download
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 96), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=400, val_interval=200)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=200, max_keep_ckpts=2))
