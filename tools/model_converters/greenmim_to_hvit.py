"""Convert GreenMIM checkpoints (LayneH/GreenMIM: ``{'model': ...}``, Swin encoder + MAE decoder)
to hvit_mm, or to the stock Swin of mmdet / mmseg / mmpretrain.

    python tools/model_converters/greenmim_to_hvit.py greenmim_swin_base.pth greenmim_hvit.pth
    python tools/model_converters/greenmim_to_hvit.py greenmim_swin_base.pth swin_det.pth --to mmdet
    python tools/model_converters/greenmim_to_hvit.py greenmim_swin_base.pth cls.pth --to mmpretrain

The released Google-Drive checkpoints were trained with the old [TL, TR, BL, BR] patch-merging
order, which the conversion fixes; pass ``--swin-order`` for files of the fixed code (b981012+).
Output: ``{'meta', 'state_dict'}``. ``--to hvit`` (default): ``backbone.*`` (GreenSwin) +
``neck.*`` (decoder). ``--to mmdet`` (also mmseg) / ``mmpretrain``: ``backbone.*`` keys of that
stock ``SwinTransformer``; load with ``init_cfg=dict(type='Pretrained', checkpoint=DST)``
(mmpretrain: add ``prefix='backbone.'``). Written to a temporary name and renamed.
"""
import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from hvit_mm.checkpoints import greenmim, load_state_dict_file, to_hvit  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='GreenMIM checkpoint (loaded with weights_only=True)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--to', choices=('hvit', 'mmdet', 'mmpretrain'), default='hvit')
    parser.add_argument('--swin-order', action='store_true',
                        help='trained with Swin\'s merge order already (GreenMIM b981012+)')
    parser.add_argument('--sha256', default=None, help='expected sha256 of src (all 64 hex digits)')
    args = parser.parse_args(argv)
    fmt = 'greenmim-swin-order' if args.swin_order else 'auto'
    sd = to_hvit(load_state_dict_file(args.src, args.sha256), fmt)
    if args.to == 'mmdet':
        sd = greenmim.to_mmdet(sd)
    elif args.to == 'mmpretrain':
        sd = greenmim.to_mmpretrain(sd)
    folder = os.path.dirname(os.path.abspath(args.dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(fd)
    try:  # a killed run never leaves a half-written dst
        torch.save({'meta': dict(converted_from=os.path.basename(args.src), format=fmt,
                                 layout=args.to), 'state_dict': sd}, tmp)
        os.replace(tmp, args.dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f'wrote {args.dst}: {len(sd)} tensors ({args.to} layout)')


if __name__ == '__main__':
    main()
