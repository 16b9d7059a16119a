"""timm / official Twins-SVT files -> hvit_mm's ``GreenTwins`` (same parameter names).

The layout is unchanged (``patch_embeds.i``, ``blocks.i.j``, ``pos_block.i``, ``norm``), so the
encoder only moves under ``backbone.``; a classifier ``head`` becomes ``head.fc`` (mmpretrain's
``LinearClsHead``). Pure: the input is not mutated, tensors are shared.
"""
from typing import Dict

from .registry import register_converter


def detect(sd: Dict) -> bool:
    return 'patch_embeds.0.proj.weight' in sd and 'pos_block.0.proj.0.weight' in sd


def convert(sd: Dict) -> Dict:
    return {('head.fc.' + k[len('head.'):]) if k.startswith('head.') else 'backbone.' + k: v
            for k, v in sd.items()}


register_converter('twins', detect, convert, priority=58)
