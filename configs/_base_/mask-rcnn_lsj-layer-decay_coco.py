# ViTDet's large-scale-jitter Mask R-CNN recipe for MAE-pretrained backbones, independent of the
# backbone: mmdet's Mask R-CNN + FPN on its lsj-100e data (1024x1024 crops of 0.1-2.0x rescaled
# images, padded to 1024x1024; 100 epochs = 25 epochs of a 4x repeated set), batch 64 (16 GPUs x 4),
# AMP, AdamW lr 1e-4, wd 0.1, layer-wise lr decay 0.7 (ViTDet-B's), no weight decay on norms and
# biases, 250-iteration warm-up, lr steps at epochs 22 and 24 (~89% / 96%). A detector config
# replaces `model.backbone` (and the neck's `in_channels`) and overrides the rate where its backbone
# needs another.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::common/lsj-100e_coco-instance.py']
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

image_size = (1024, 1024)
model = dict(data_preprocessor=dict(
    batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]))
train_dataloader = dict(batch_size=4, num_workers=4)

optim_wrapper = dict(
    _delete_=True, type='AmpOptimWrapper', constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=25, milestones=[22, 24], gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=64)
