# HPViT-B built from the official MAE ViT-B/16 pretraining as a dense backbone, shared by the Mask
# R-CNN and UperNet configs of this folder (a variable-only fragment: they take `backbone` and
# `stage_dims` through `_base_`). Stride-4 patch embedding and a conv pool after blocks 1/3/9 give
# four maps at strides 4/8/16/32; 16x16-token windows at strides 4 and 8 (64 / 128 px), global
# attention at 16 and 32; the checkpoint's 14x14 position grid is resampled to every input in
# forward; drop path 0.1.
pretrained = 'hvit://mae_vit-base-p16'  # see ../metafile.yml
embed_dims = 768  # every stage: a pool halves the grid and keeps the width
stage_dims = [embed_dims] * 4  # channels of the four maps
backbone = dict(
    type='HPViT',
    arch='base',
    img_size=224,
    pool='conv',
    attn_types=('window', 'window', 'global', 'global'),
    window_size=16,
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
