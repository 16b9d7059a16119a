# UM-MAE Swin-T as a dense backbone, shared by the Mask R-CNN and UperNet configs of benchmarks/ (a
# variable-only fragment: they take `backbone` and `stage_dims` through `_base_`). The official
# ImageNet-fine-tuned file (the authors' downstream starting point), four maps at strides 4-32 each
# through its norm, window 16 as at fine-tuning (maps are padded to whole windows), drop path 0.1.
pretrained = 'hvit://um-mae_swin-tiny_ft-in1k'  # see ../metafile.yml
stage_dims = [96 * 2**i for i in range(4)]
backbone = dict(
    type='UMSwin',
    arch='tiny',
    window_size=16,
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
