# Recipe: LayneH/GreenMIM Swin-B w7 pretraining; hvit_mm's own dense baseline.
# The dense baseline GreenMIM is measured against (SimMIM-style, docs/benchmarks.md "GreenMIM vs
# SimMIM"): the GreenMIM Swin-B w7 recipe, model and loss, but the encoder sees every 32 px unit,
# the hidden ones replaced by a learnable mask token after the patch embedding. Not official SimMIM
# (192 px, window 6, a linear head and an L1 loss: mmpretrain's simmim configs); this one differs
# from GreenMIM only in what the encoder computes.
_base_ = '../greenmim/greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k.py'

model = dict(type='SimMIM')
