"""The contract every hvit_mm backbone keeps with the algorithms, necks and optimiser around it.

A backbone is a :class:`Backbone`. What it offers, and nothing else, is what the rest of hvit_mm
may use:

* ``forward(x) -> tuple`` of NCHW maps (or pooled vectors), one per ``out_indices`` entry, each
  described by :attr:`feature_info` (``num_chs``, ``reduction``).
* ``get_layer_depth(name, prefix) -> (layer_id, num_layers)`` and ``no_weight_decay()``: layer-wise
  lr decay and weight decay (one optimiser constructor serves every backbone).
* ``init_cfg=dict(type='Pretrained', checkpoint=...)``: a strict load of any format
  ``hvit_mm.checkpoints`` converts, through :meth:`adapt_checkpoint`.

A backbone that supports masked image modeling (MIM) declares it with :attr:`mim_unit` (the side, in
pixels, of the unit a mask hides or keeps) and implements :meth:`forward_masked`::

    feats = backbone.forward_masked(x, mask, token=None, logit_blocks=())   # -> MaskedFeatures

``x`` is (B, C_in, H, W); ``mask`` a :class:`~hvit_mm.models.masking.Mask` over the
:meth:`unit_grid` of (H, W), raster order, **True = the encoder sees the unit**. Only the K visible
units are encoded, and they come back in ``mask.ids_keep`` order: the algorithm (mask generator,
decoder, loss) never needs to know how the backbone arranged them internally. Units in
``mask.replaced`` (a subset of the visible ones) enter the encoder as ``token`` (1, 1, C_embed)
instead of their pixels: UM-MAE's secondary masking, or SimMIM with every unit "visible".
``logit_blocks`` asks backbones that can (``attn_logits = True``: ViT) for the pre-softmax
attention logits of those blocks (MAE-Lite distillation); the others refuse a non-empty request.

What the algorithm may read besides (set by the constructor, used to build decoders):

* ``mim_dims``: width C of the stem tokens, i.e. of ``token`` (1, 1, C);
* ``mim_out``: ``dict(num_chs, unit_tokens, units_per_token)`` of ``MaskedFeatures.tokens``;
* ``mim_stages``: ``dict(num_chs, unit_tokens)`` per entry of ``MaskedFeatures.stages``;
* ``img_size``: the (H, W) the model is built for (decoder position tables are stored for it);
* ``num_prefix_tokens``, ``mim_mask`` (``'any'`` or UM-MAE's ``'uniform'``).

That is all an MIM algorithm uses: a new backbone family gets MAE-style pretraining by setting
these and implementing ``forward_masked``; layer decay by ``layer_depth`` and ``num_layers``;
dense transfer by ``forward`` + ``feature_info``.
"""
import re
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn
import torch.utils.checkpoint as cp

from ...checkpoints import load_pretrained


class MaskedFeatures(NamedTuple):
    """What :meth:`Backbone.forward_masked` returns.

    tokens: (B, L, C) final encoder tokens of the K visible units (prefix tokens excluded) in one
        of two layouts:

        * per unit (``compact_hw`` None): L = K·t², t = ``unit_tokens``; unit-major in
          ``mask.ids_keep`` order, each unit's t×t tokens in raster order. ViT and GreenMIM's Swin
          give t = 1 (one token per 16 / 32 px unit), Hiera-MAE t = 2.
        * compact (UM-MAE): the K visible units form a dense (gh, gw) = ``compact_hw`` grid,
          ``ids_keep`` in its raster order, and the tokens are that grid's (gh/r, gw/r) map in
          raster order, r = gh / (map height) units per token side.
    prefix: (B, P, C) leading tokens (ViT's cls), P = 0 for backbones without one.
    unit_tokens: t, tokens per unit side (per-unit layout).
    compact_hw: (gh, gw) of the compact layout, else None.
    stages: optional per-stage features for multi-scale necks, (B, K, t_i, t_i, C_i) each, visible
        units in ``ids_keep`` order (Hiera); empty when the backbone has no hierarchy to offer.
    """
    tokens: Tensor
    prefix: Tensor
    unit_tokens: int = 1
    compact_hw: Optional[Tuple[int, int]] = None
    stages: Tuple[Tensor, ...] = ()
    logits: Tuple[Tensor, ...] = ()  # (B, heads, P+K, P+K) per requested block, in block order

    def units(self) -> Tensor:
        """Per-unit layout as (B, K, t, t, C)."""
        if self.compact_hw is not None:
            raise ValueError('MaskedFeatures.units: compact features have no per-unit view')
        B, L, C = self.tokens.shape
        t = self.unit_tokens
        return self.tokens.view(B, L // (t * t), t, t, C)


def block_depth(name: str, num_blocks: int, stem: Sequence[str],
                blocks: str = r'blocks\.(\d+)\.', extra=None) -> int:
    """The MAE / BEiT depth rule over a flat block index: a name starting with a ``stem`` entry -> 0,
    the i-th block (``blocks`` regex, group 1 = i) -> i + 1, ``extra(name)`` when it gives an int,
    anything else (final norms, heads) -> num_blocks + 1."""
    if name.startswith(tuple(stem)):
        return 0
    m = re.match(blocks, name)
    if m:
        return int(m.group(1)) + 1
    layer = extra(name) if extra is not None else None
    return num_blocks + 1 if layer is None else layer


def nested_block_depth(name: str, stage_depths: Sequence[int], stem: Sequence[str],
                       stage_key: str = 'layers', extra=None) -> int:
    """:func:`block_depth` for ``{stage_key}.i.blocks.j`` layouts (Swin, PVT, Twins): block j of
    stage i counts as flat block ``sum(stage_depths[:i]) + j``; a stage's other parameters (patch
    merging / down-sampling at its end) belong with its last block."""
    m = re.match(rf'{stage_key}\.(\d+)\.(?:blocks\.(\d+)\.)?', name)
    if m:
        i = int(m.group(1))
        j = int(m.group(2)) if m.group(2) is not None else stage_depths[i] - 1
        return sum(stage_depths[:i]) + j + 1
    return block_depth(name, sum(stage_depths), stem, blocks=r'(?!)', extra=extra)


class Backbone(BaseModule):
    """Base of every hvit_mm backbone: arch resolution, activation checkpointing, initialisation,
    strict pretrained loading and layer depth are written here once.

    Subclasses set :attr:`arch_zoo` (and :attr:`arch_keys`, the keys an arch dict must have),
    build their layers, call :meth:`reset_parameters`-style initialisation in ``__init__`` and
    implement :meth:`layer_depth` (with :attr:`num_layers`) and ``forward``. MIM-capable ones set
    :attr:`mim_unit` and implement :meth:`forward_masked`.
    """

    arch_zoo: Dict[str, dict] = {}
    arch_keys: Tuple[str, ...] = ()
    # side in pixels of a mask unit (None: this backbone does not offer forward_masked)
    mim_unit: Optional[int] = None
    # 'any': any equal-count subset of units; 'uniform': one kept unit per 2×2 grid, ids_keep in
    # grid order (UM-MAE's compaction needs it)
    mim_mask: str = 'any'
    num_prefix_tokens: int = 0
    attn_logits: bool = False
    in_channels: int = 3  # image channels (set by the constructor)
    mim_dims: int = 0
    mim_out: Dict = {}
    mim_stages: Tuple[Dict, ...] = ()
    # the smallest instance's constructor arguments, for the registry-wide tests
    tiny_cfg: Dict = {}

    def __init__(self, with_cp: bool = False, init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp

    # ------------------------------------------------------------------------------- construction
    @classmethod
    def resolve_arch(cls, arch: Union[str, dict]) -> dict:
        """``arch`` as a dict: a name of :attr:`arch_zoo` or a dict with :attr:`arch_keys`."""
        name = cls.__name__
        if isinstance(arch, str):
            if arch not in cls.arch_zoo:
                raise KeyError(f'{name}: unknown arch {arch!r}; choose from {sorted(cls.arch_zoo)} '
                               f'or pass a dict with {list(cls.arch_keys)}')
            return dict(cls.arch_zoo[arch])
        if not isinstance(arch, dict):
            raise TypeError(f'{name}: arch must be a name or a dict, got {type(arch).__name__}')
        missing = set(cls.arch_keys) - set(arch)
        if missing:
            raise KeyError(f'{name}: arch dict lacks {sorted(missing)}')
        return dict(arch)

    def run_block(self, block: nn.Module, x: Tensor, *args) -> Tensor:
        """``block(x, *args)``, activation-checkpointed while training with ``with_cp``: its
        activations are recomputed in backward instead of kept."""
        if self.with_cp and self.training and x.requires_grad:
            return cp.checkpoint(block, x, *args, use_reentrant=False)
        return block(x, *args)

    # ----------------------------------------------------------------------------- initialisation
    def init_weights(self) -> None:
        """Random initialisation happens at construction. ``init_cfg=dict(type='Pretrained',
        checkpoint, prefix=None, fmt='auto', sha256=None)`` then loads strictly through
        :meth:`adapt_checkpoint`, where only :meth:`pretrained_allowances` may be missing or extra;
        any other ``init_cfg`` is mmengine's."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            missing, unexpected = self.pretrained_allowances()
            load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                            fmt=cfg.get('fmt', 'auto'), sha256=cfg.get('sha256'),
                            adapt=self.adapt_checkpoint, allow_missing=missing,
                            allow_unexpected=unexpected)
            self._is_init = True
        elif cfg is not None:
            super().init_weights()

    def pretrained_allowances(self) -> Tuple[Sequence[str], Sequence[str]]:
        """(key prefixes a pretrained file may lack, key prefixes it may have extra)."""
        return (), ()

    def adapt_checkpoint(self, sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Pure: a converted state dict (bare or ``backbone.``-namespaced) -> this backbone's keys.
        Subclasses resample position tables here."""
        if any(k.startswith('backbone.') for k in sd):
            return {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
        return dict(sd)

    # ------------------------------------------------------------------------- optimiser contract
    num_layers: int = 1

    def layer_depth(self, name: str) -> int:
        """Depth in [0, num_layers) of a parameter name (no prefix). The stem is 0."""
        raise NotImplementedError

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(layer_id, num_layers)`` for layer-wise lr decay (mmpretrain's signature); names
        outside ``prefix`` (necks, heads) get the last depth."""
        if not param_name.startswith(prefix):
            return self.num_layers - 1, self.num_layers
        return self.layer_depth(param_name[len(prefix):]), self.num_layers

    def no_weight_decay(self) -> set:
        """Parameter names (no prefix) kept out of weight decay."""
        return set()

    # ------------------------------------------------------------------------------ MIM contract
    def unit_grid(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        """The (h, w) mask-unit grid of an (H, W) input; a clear error when H or W is not a
        multiple of :attr:`mim_unit`."""
        if self.mim_unit is None:
            raise TypeError(f'{type(self).__name__} does not support masked image modeling '
                            '(no mim_unit / forward_masked)')
        u = self.mim_unit
        if hw[0] % u or hw[1] % u or hw[0] <= 0 or hw[1] <= 0:
            raise ValueError(f'{type(self).__name__}: a {hw[0]}x{hw[1]} input is not a multiple of '
                             f'its {u} px mask unit; use sizes divisible by {u}')
        return hw[0] // u, hw[1] // u

    def forward_masked(self, x: Tensor, mask, token: Optional[Tensor] = None,
                       logit_blocks: Sequence[int] = ()) -> MaskedFeatures:
        """Encode the visible units of ``x`` (B, C_in, H, W) under ``mask``; see the module
        docstring. ``token`` (1, 1, C) replaces the units in ``mask.replaced``."""
        raise TypeError(f'{type(self).__name__} does not support masked image modeling')

    def check_mask(self, x: Tensor, mask, token: Optional[Tensor],
                   logit_blocks: Sequence[int] = ()) -> Tuple[int, int]:
        """Validate a ``forward_masked`` call; returns the unit grid (h, w) of ``x``."""
        hw = self.unit_grid((x.shape[2], x.shape[3]))
        shape = (x.shape[0], hw[0] * hw[1])
        if tuple(mask.visible.shape) != shape:
            raise ValueError(f'{type(self).__name__}: mask {tuple(mask.visible.shape)} does not '
                             f'cover the {hw[0]}x{hw[1]} units of a {x.shape[2]}x{x.shape[3]} '
                             f'input (expected {shape})')
        if mask.replaced is not None and token is None:
            raise ValueError(f'{type(self).__name__}: mask.replaced needs a token to put there')
        if logit_blocks and not self.attn_logits:
            raise ValueError(f'{type(self).__name__} cannot return attention logits')
        return hw
