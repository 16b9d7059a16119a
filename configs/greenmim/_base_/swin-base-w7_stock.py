# GreenMIM-pretrained Swin-B (window 7) as the *stock* SwinTransformer of mmdet / mmseg, shared by
# the detection and segmentation configs of ../benchmarks (a variable-only fragment: they take
# `greenmim_swin`, `stage_dims` and `seg_optim_wrapper` through `_base_`). The stock loaders read
# `backbone.*` keys in their own layout and load non-strictly, so the weights are converted once
# (official GreenMIM file, `hvit://greenmim_swin-base-w7` or this repo's pretraining output ->
# stock keys, unfold-order patch merging; bias tables of another window are resized on load):
#   python tools/model_converters/greenmim_to_hvit.py \
#       work_dirs/greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k/epoch_800.pth \
#       work_dirs/greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k/epoch_800_stock-swin.pth \
#       --to mmdet
# (the same file serves mmseg). Stock Swin has no get_layer_depth, so these configs keep the stock
# Swin recipes' optimisers, without layer decay.
greenmim_checkpoint = ('work_dirs/greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k/'
                       'epoch_800_stock-swin.pth')
embed_dims = 128  # stage 1; each patch merging doubles it
stage_dims = [embed_dims * 2**i for i in range(4)]  # channels of the four maps (strides 4-32)
greenmim_swin = dict(
    type='SwinTransformer',
    embed_dims=embed_dims,
    depths=[2, 2, 18, 2],
    num_heads=[4, 8, 16, 32],
    window_size=7,
    drop_path_rate=0.3,  # our choice for B (the Swin detectors use 0.2 for T/S, mmseg 0.3 for B)
    patch_norm=True,
    norm_cfg=dict(type='LN', eps=1e-6),  # the pretrained encoder's: same features (float32 noise)
    out_indices=(0, 1, 2, 3),
    init_cfg=dict(type='Pretrained', checkpoint=greenmim_checkpoint))
# mmseg's Swin UperNet optimiser (swin-*_upernet_8xb2-160k_ade20k): AdamW lr 6e-5, wd 0.01, no
# weight decay on the relative position bias tables and norms
seg_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'relative_position_bias_table': dict(decay_mult=0.0),
                                    'norm': dict(decay_mult=0.0)}))
