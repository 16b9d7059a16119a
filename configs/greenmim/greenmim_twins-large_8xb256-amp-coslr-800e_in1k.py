# Recipe: GreenMIM's Swin-B w7 script, lr of its scripts/run_greenmim_twins_large.sh.
# GreenMIM pretraining of Twins-SVT-L (ALTGVT: dims 128/256/512/1024, depths 2/2/18/2, LSA window 7,
# GSA sub-sampling 8/4/2/1): the Swin-B w7 recipe (800 epochs, batch 2048, AdamW (0.9, 0.95),
# wd 0.05, mask 0.75, norm_pix) with blr 1.5e-4 (lr 1.2e-3), the lr of LayneH/GreenMIM's only Twins
# script (scripts/run_greenmim_twins_large.sh, an ad-hoc 100-epoch run). GSA keys/values come from a
# sparse convolution over the visible tokens (PyTorch gather/scatter, hvit_mm/models/layers/
# sparse_conv.py). GreenMIM publishes no Twins weights or results.
_base_ = './greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k.py'

model = dict(backbone=dict(_delete_=True, type='GreenTwins', arch='large', img_size=224,
                           window_size=7, sr_ratios=(8, 4, 2, 1), drop_path_rate=0.0))
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 2048 / 256))
