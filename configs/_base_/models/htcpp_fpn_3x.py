# HTC++ (htcpp_fpn.py) with the 3x schedule: 36 epochs, steps at epochs 27 and 33 (the 6x schedule's
# 63/69 of 72 scaled), everything else unchanged.
_base_ = './htcpp_fpn.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[27, 33],
         gamma=0.1),
]
