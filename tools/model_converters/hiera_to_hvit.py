"""Convert Hiera checkpoints: official (``model_state``) or timm -> hvit_mm, or hvit_mm -> official.

    python tools/model_converters/hiera_to_hvit.py hiera_base_224.pth hiera-b_hvit.pth
    python tools/model_converters/hiera_to_hvit.py mae_hiera_base_224.pth mae_hvit.pth
    python tools/model_converters/hiera_to_hvit.py hvit.pth official.pth --to-official

The default output is a whole hvit_mm model (``{'state_dict': {'backbone.*', 'head.fc.*'}}`` for a
classifier, ``backbone.*`` + the ``HieraMAE`` decoder keys for an MAE file), usable as ``load_from``
by ``tools/test.py`` and by a backbone's ``init_cfg`` (which takes ``backbone.*``). The file is
written to a temporary name and renamed, so an interrupted run leaves no partial output.
"""
import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from hvit_mm.checkpoints import hiera as conv  # noqa: E402
from hvit_mm.checkpoints.io import load_state_dict_file  # noqa: E402


def save_atomic(obj, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='input checkpoint (loaded with weights_only=True)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--to-official', action='store_true',
                      help='hvit_mm -> official names, wrapped in model_state')
    args = parser.parse_args(argv)
    sd = load_state_dict_file(args.src)
    if args.to_official:
        out = {'model_state': conv.to_official(sd)}
    else:
        if not conv.detect(sd):
            raise SystemExit(f'{args.src}: not an official/timm Hiera checkpoint '
                             f'(first keys: {sorted(sd)[:5]})')
        out = {'meta': dict(converted_from=os.path.basename(args.src), format='hiera'),
               'state_dict': conv.convert(sd)}
    save_atomic(out, args.dst)
    print(f"wrote {args.dst}: {len(out.get('state_dict', out.get('model_state')))} tensors")


if __name__ == '__main__':
    main()
