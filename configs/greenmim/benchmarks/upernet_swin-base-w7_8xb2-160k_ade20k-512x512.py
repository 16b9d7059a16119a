# Recipe: mmseg's Swin-B UperNet ADE20K recipe (160k); GreenMIM publishes no segmentation recipe.
# UperNet on ADE20K (512x512 crops, 160k iterations, batch 16) with GreenMIM Swin-B (window 7) as
# mmseg's stock SwinTransformer, loading the converted GreenMIM weights
# (../_base_/swin-base-w7_stock.py: the conversion command). Data and schedule:
# ../../_base_/upernet_layer-decay_ade20k.py (1500-iteration warm-up, then poly decay); optimiser:
# mmseg's Swin UperNet one (AdamW lr 6e-5, wd 0.01, no layer decay: stock Swin has no layer depth),
# i.e. mmseg's Swin-B ADE20K recipe. GreenMIM publishes no
# segmentation config or result.
_base_ = ['../../_base_/upernet_layer-decay_ade20k.py', '../_base_/swin-base-w7_stock.py']

model = dict(
    backbone=dict(_base_.greenmim_swin, _delete_=True),
    decode_head=dict(in_channels=_base_.stage_dims),
    auxiliary_head=dict(in_channels=_base_.stage_dims[2]))
optim_wrapper = dict(_base_.seg_optim_wrapper, _delete_=True)
