# Hiera-B from its Hiera-MAE pretraining as a dense backbone, shared by the Mask R-CNN, HTC++ and
# UperNet configs of this folder (a variable-only fragment: they take `backbone` and `stage_dims`
# through `_base_`). Four maps at strides 4/8/16/32 (q_pool=3: every pooling) in spatial order; the
# checkpoint's 56x56 position table is resampled to every input in forward; drop path 0.1.
pretrained = 'hvit://hiera-mae_hiera-base-p4'  # see ../metafile.yml
embed_dims = 96  # stage 1; each of the three poolings doubles it
stage_dims = [embed_dims * 2**i for i in range(4)]  # channels of the four maps
backbone = dict(
    type='Hiera',
    arch='base',
    img_size=224,
    q_pool=3,
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
