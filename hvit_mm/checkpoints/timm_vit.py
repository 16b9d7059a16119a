"""timm ``VisionTransformer`` classifiers (``vit_*``, DeiT) -> hvit_mm.

timm's names are hvit_mm's ``ViT`` names, so conversion is a namespace change (``backbone.*``,
``head.fc.*``). Features hvit_mm's plain ViT does not have (register tokens, layer scale, pre-norm,
qk-norm, attention pooling, distillation tokens) raise a ValueError listing the keys.
"""
from typing import Dict

from .mae import is_vit_encoder, map_vit
from .registry import register_converter


def detect(sd: Dict) -> bool:
    return is_vit_encoder(sd) and 'head.weight' in sd


def convert(sd: Dict) -> Dict:
    return map_vit(sd, what='timm ViT')


register_converter('timm_vit', detect, convert, priority=10)  # 'mae' minus head.weight
