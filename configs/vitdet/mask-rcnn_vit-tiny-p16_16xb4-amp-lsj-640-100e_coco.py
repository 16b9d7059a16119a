# Recipe: wangsr126/mae-lite projects/eval_tools/det/DETECTION.md (detectron2).
# MAE-Lite's detection transfer: ViTDet Mask R-CNN with the MAE-Lite ViT-Tiny (192-d, 12 heads) on
# 640x640 large-scale jitter, 100 epochs, batch 64, AMP, activation checkpointing, AdamW (lr 1e-4,
# wd 0.05), no layer decay (rate 1.0), no drop path; steps at 24/27 and 26/27 of training, 250-
# iteration warm-up. Everything else (windows of 14 tokens, global blocks 2/5/8/11, decomposed
# relative position, SimpleFeaturePyramid, LN heads) as the ViT-B config. MAE-Lite reports
# 39.9 box / 35.4 mask AP for MAE-Tiny (this checkpoint), 42.3 / 37.4 for D-MAE-Tiny (the _d-mae-lite
# config); both from detectron2, not reproduced here.
_base_ = './mask-rcnn_vit-base-p16_16xb4-amp-lsj-100e_coco.py'

# the pretraining run of configs/mae_lite (or the official file through mae_lite_to_hvit.py)
pretrained = 'work_dirs/mae-lite_vit-tiny-p16_8xb512-amp-coslr-400e_in1k/epoch_400.pth'
image_size = (640, 640)
embed_dims = 192

model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(
        arch='mae-lite-tiny',
        img_size=image_size,
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=embed_dims))

# the base's pipelines with every 1024 px size at 640
_sizes = dict(RandomResize='scale', RandomCrop='crop_size', Resize='scale')
train_pipeline = [dict(t, **{_sizes[t.type]: image_size}) if t.type in _sizes else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, **{_sizes[t.type]: image_size}) if t.type in _sizes else t
                 for t in _base_.test_pipeline]
del _sizes
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0))
