"""Shared body of the thin checkpoint-converter CLIs in this folder (the conversion itself is the
pure function ``hvit_mm.checkpoints.<format>.convert``)."""
import argparse
import hashlib
import os
import os.path as osp
import sys
import tempfile

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def main(fmt: str, description: str) -> None:
    from hvit_mm.checkpoints import load_state_dict_file, to_hvit
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='checkpoint to convert (.pth / .pth.tar / .bin)')
    parser.add_argument('dst', help="output .pth: {'meta', 'state_dict'} in hvit_mm's layout "
                        "(backbone.* / neck.* / head.fc.* ...), loadable by load_from or init_cfg")
    parser.add_argument('--sha256', default=None, help='expected sha256 of src (all 64 hex digits)')
    args = parser.parse_args()
    sd = to_hvit(load_state_dict_file(args.src, args.sha256), fmt)
    ckpt = {'meta': dict(converted_from=osp.basename(args.src), format=fmt), 'state_dict': sd}
    out_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix='.tmp')
    os.close(fd)
    try:  # a killed run never leaves a half-written dst
        torch.save(ckpt, tmp)
        os.replace(tmp, args.dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    with open(args.dst, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    groups = sorted({k.split('.')[0] for k in sd})
    print(f'{args.dst}: {len(sd)} tensors ({", ".join(groups)}), sha256 {digest}')
