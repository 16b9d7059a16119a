"""One layer-wise learning-rate decay constructor for mmpretrain, mmdet and mmseg.

A parameter of layer ``i`` out of ``n`` depths gets ``lr · rate^(n - 1 - i)``: the stem decays most,
heads and necks not at all. Depths come from the backbone's ``get_layer_depth(name, prefix)``
(mmpretrain's contract: ``(layer_id, num_layers)``): each backbone says how deep its parameters are
(``hvit_mm.models.backbones.base``: ``block_depth`` for flat ``blocks.i``, ``nested_block_depth``
for ``layers.i.blocks.j``), so every hvit_mm backbone, and mmpretrain's own, is served without
substring rules. Parameters outside the backbone (neck, heads) get the last depth.

``paramwise_cfg`` takes ``layer_decay_rate`` plus every key of mmengine's
``DefaultOptimWrapperConstructor`` (``custom_keys``, ``bias_decay_mult``, ``norm_decay_mult``,
``flat_decay_mult``, ...), which are applied first; names returned by the backbone's
``no_weight_decay()`` (position embeddings, cls/mask tokens) get no weight decay.
"""
from typing import Callable, List, Tuple

from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.logging import MMLogger
from torch import nn

from ..registry import register_module

DepthFn = Callable[[str], Tuple[int, int]]

def _backbone_of(model: nn.Module):
    model = getattr(model, 'module', model)  # DDP
    return model, getattr(model, 'backbone', None)


def depth_fn(model: nn.Module) -> DepthFn:
    """``name -> (layer_id, num_layers)`` for every parameter name of ``model``."""
    model, backbone = _backbone_of(model)
    if backbone is not None and hasattr(backbone, 'get_layer_depth'):
        num_layers = backbone.get_layer_depth('', 'backbone.')[1]

        def fn(name: str) -> Tuple[int, int]:
            if name.startswith('backbone.'):
                return backbone.get_layer_depth(name, 'backbone.')
            return num_layers - 1, num_layers
        return fn
    if hasattr(model, 'get_layer_depth'):
        return model.get_layer_depth
    raise TypeError(f'layer-wise lr decay needs {type(model).__name__}.backbone (or the model) to '
                    'implement get_layer_depth(param_name, prefix); this backbone does not: remove '
                    "'constructor=LayerDecayOptimWrapperConstructor' from optim_wrapper")


def no_weight_decay_names(model: nn.Module) -> set:
    model, backbone = _backbone_of(model)
    names = set()
    if backbone is not None and hasattr(backbone, 'no_weight_decay'):
        names |= {f'backbone.{n}' for n in backbone.no_weight_decay()}
    if hasattr(model, 'no_weight_decay'):
        names |= set(model.no_weight_decay())
    return names


@register_module('OPTIM_WRAPPER_CONSTRUCTORS')
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``optim_wrapper=dict(constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, ...))`` in any of the three codebases."""

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs) -> None:
        if prefix:  # only the top-level call does the work; mmengine recurses from there
            return super().add_params(params, module, prefix, **kwargs)
        cfg = dict(self.paramwise_cfg)
        rate = cfg.pop('layer_decay_rate', 1.0)
        self.paramwise_cfg = cfg
        try:
            # one group per parameter, with mmengine's custom_keys / *_decay_mult applied
            super().add_params(params, module, prefix, **kwargs)
        finally:
            self.paramwise_cfg = dict(cfg, layer_decay_rate=rate)
        depth = depth_fn(module)
        names = {id(p): n for n, p in module.named_parameters()}
        no_wd = no_weight_decay_names(module)
        for group in params:
            name = names[id(group['params'][0])]
            layer_id, num_layers = depth(name)
            scale = rate ** (num_layers - 1 - layer_id)
            group['lr'] = group.get('lr', self.base_lr) * scale
            group.update(lr_scale=scale, layer_id=layer_id, param_name=name)
            if name in no_wd and self.base_wd is not None:
                group['weight_decay'] = 0.0
        if rate != 1.0:
            MMLogger.get_current_instance().info(
                f'layer-wise lr decay {rate}: {len(params)} parameter groups, lr scales '
                f'{min(g["lr_scale"] for g in params):.3g}..{max(g["lr_scale"] for g in params):.3g}')
