# Recipe: mmdet's Swin Mask R-CNN 3x config; GreenMIM publishes no detection recipe.
# Mask R-CNN + FPN on COCO with GreenMIM Swin-B (window 7) as mmdet's stock SwinTransformer (its
# 128/256/512/1024-channel maps at strides 4-32 feed a stock FPN), loading the converted GreenMIM
# weights (../_base_/swin-base-w7_stock.py: the conversion command). Recipe: mmdet's Swin Mask R-CNN
# 3x (the Swin paper's): multi-scale 480-800 training with DETR-style random crops, 36 epochs, batch
# 16 (8 GPUs x 2), AdamW lr 1e-4, wd 0.05 (none on bias tables and norms), steps at 27 and 33, AMP.
# GreenMIM publishes no detection config or result for this setting.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_amp-ms-crop-3x_coco.py',
          '../_base_/swin-base-w7_stock.py']
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_base_.greenmim_swin, _delete_=True),
    neck=dict(in_channels=_base_.stage_dims))
