# Recipe: LayneH/GreenMIM scripts/srun_greenmim_swin_large_win14.sh (800 epochs).
# GreenMIM pretraining of Swin-L with window 14 (LayneH/GreenMIM
# scripts/srun_greenmim_swin_large_win14.sh): the Swin-B w7 recipe (blr 1e-4, 800 epochs, batch
# 2048) with the large encoder (192-d stem, heads 6/12/24/48) and 14x14 windows; the decoder is the
# same 1-block 512-d one.
_base_ = './greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k.py'

model = dict(backbone=dict(arch='large', window_size=14))
