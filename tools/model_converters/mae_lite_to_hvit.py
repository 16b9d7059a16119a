#!/usr/bin/env python
"""Convert a MAE-Lite / D-MAE (wangsr126/mae-lite: module.model.*, module.tch_model.*, module.attn_adapter.*) checkpoint to hvit_mm's layout.

Usage: python tools/model_converters/mae_lite_to_hvit.py SRC DST [--sha256 HEX]
"""
from _convert import main

if __name__ == '__main__':
    main('mae_lite', __doc__.splitlines()[0])
