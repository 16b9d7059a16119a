# Recipe: wangsr126/mae-lite projects/eval_tools/det/DETECTION.md (detectron2).
# The MAE-Lite detection recipe from the distilled D-MAE-Lite ViT-Tiny (MAE-Lite reports 42.3 box /
# 37.4 mask AP with detectron2; not reproduced here).
_base_ = './mask-rcnn_vit-tiny-p16_16xb4-amp-lsj-640-100e_coco.py'

model = dict(backbone=dict(init_cfg=dict(
    checkpoint='work_dirs/d-mae-lite_vit-tiny-p16_8xb512-amp-coslr-400e_in1k/epoch_400.pth')))
