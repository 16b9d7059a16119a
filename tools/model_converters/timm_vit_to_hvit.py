#!/usr/bin/env python
"""Convert a timm VisionTransformer / DeiT classifiers checkpoint to hvit_mm's layout.

Usage: python tools/model_converters/timm_vit_to_hvit.py SRC DST [--sha256 HEX]
"""
from _convert import main

if __name__ == '__main__':
    main('timm_vit', __doc__.splitlines()[0])
