#!/usr/bin/env python
"""Convert an official UM-MAE (implus/UM-MAE: {'model': ...}; Swin or PVT, pretrained with decoder or ImageNet fine-tuned, or its SimMIM baselines) checkpoint to hvit_mm's layout.

Usage: python tools/model_converters/um_mae_to_hvit.py SRC DST [--sha256 HEX]
"""
from _convert import main

if __name__ == '__main__':
    main('um_mae', __doc__.splitlines()[0])
