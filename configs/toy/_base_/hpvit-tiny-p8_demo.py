# The demo's backbone (make demo, tools/demo.py), a variable-only fragment shared by its MAE
# pretraining and its Mask R-CNN / UperNet transfer configs, so the pretrained ViT and the HPViT it
# is loaded into cannot drift apart: a plain ViT 128-d x 6 blocks (4 heads), 8 px patches, 64 px
# pretraining images (an 8x8 position table). As HPViT the same blocks run on a stride-4 token grid
# with a pool after blocks 0, 2 and 4: stages of 1/2/2/1 blocks, four 128-channel maps at strides
# 4/8/16/32, 8x8-token windows at strides 4 and 8, global attention at 16 and 32.
vit_arch = dict(embed_dims=128, depth=6, num_heads=4)
vit_patch_size = 8
vit_img_size = 64
demo_data = 'data/demo'  # tools/demo.py writes the demo's toy sets here
demo_pretrained = 'work_dirs/demo/pretrain/backbone.pth'  # tools/demo.py writes it
stage_dims = [vit_arch['embed_dims']] * 4  # channels of the four maps
backbone = dict(
    type='HPViT',
    arch=dict(vit_arch, pool_after=(0, 2, 4)),
    img_size=vit_img_size,
    patch_size=vit_patch_size,
    pool='conv',
    attn_types=('window', 'window', 'global', 'global'),
    window_size=8,
    out_indices=(0, 1, 2, 3),
    init_cfg=dict(type='Pretrained', checkpoint=demo_pretrained))
