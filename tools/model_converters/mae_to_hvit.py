#!/usr/bin/env python
"""Convert a official MAE (facebookresearch/mae: {'model': ...}, encoder-only, _full or fine-tuned) checkpoint to hvit_mm's layout.

Usage: python tools/model_converters/mae_to_hvit.py SRC DST [--sha256 HEX]
"""
from _convert import main

if __name__ == '__main__':
    main('mae', __doc__.splitlines()[0])
