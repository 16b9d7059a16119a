# The plain ViT-B/16 from the official MAE pretraining laid out as ViTDet, shared by the Mask R-CNN
# and UperNet configs of this folder (a variable-only fragment: they take `backbone` and `neck`
# through `_base_` and set the input size). 14x14-token windows except the global blocks 2/5/8/11,
# decomposed relative position (zero-initialised), drop path 0.1; SimpleFeaturePyramid makes the
# single stride-16 map into strides 4-32 with channel LayerNorm.
pretrained = 'hvit://mae_vit-base-p16'  # see ../metafile.yml
embed_dims = 768
backbone = dict(
    type='ViTDet',
    arch='base',
    window_size=14,
    global_blocks=(2, 5, 8, 11),
    rel_pos_bias=True,
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
neck = dict(
    type='SimpleFeaturePyramid',
    in_channels=embed_dims,
    scale_factors=(4.0, 2.0, 1.0, 0.5),
    norm_cfg=dict(type='LN2d', eps=1e-6))  # channel LayerNorm (hvit_mm), as ViTDet's neck and heads
