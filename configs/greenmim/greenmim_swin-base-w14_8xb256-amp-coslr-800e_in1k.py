# Recipe: LayneH/GreenMIM scripts/srun_greenmim_swin_base_win14.sh (800 epochs).
# GreenMIM pretraining of Swin-B with window 14 (LayneH/GreenMIM
# scripts/srun_greenmim_swin_base_win14.sh): the Swin-B w7 recipe with blr 1.5e-4 (lr 1.2e-3 at
# batch 2048). With 14x14 windows only stage 1 (56x56 tokens, 768 visible) is grouped; stages 2-4
# hold at most two windows' worth of visible tokens.
_base_ = './greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k.py'

model = dict(backbone=dict(window_size=14))
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 2048 / 256))
