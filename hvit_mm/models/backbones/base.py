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
import numbers
import re
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
import torch
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


# ------------------------------------------------------------------------------ argument checks
# Shared by every constructor, so a bad argument fails at build time, in one line that names the
# owner, the parameter, the value and what would work, instead of later and deep inside torch.
def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_int(owner: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; TypeError / ValueError naming ``owner.name``."""
    if not _is_int(value):
        raise TypeError(f'{owner}: {name} must be an int >= {minimum}, got {value!r} '
                        f'({type(value).__name__})')
    if value < minimum:
        raise ValueError(f'{owner}: {name} must be an int >= {minimum}, got {value}')
    return int(value)


def check_ints(owner: str, name: str, values, length: Optional[int] = None,
               minimum: int = 1) -> Tuple[int, ...]:
    """A sequence of ints >= ``minimum`` (one per stage when ``length`` is given)."""
    if _is_int(values) or isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f'{owner}: {name} must be a sequence of ints, got {values!r}')
    if length is not None and len(values) != length:
        raise ValueError(f'{owner}: {name}={tuple(values)} needs one entry per stage '
                         f'({length})')
    if not values or any(not _is_int(v) or v < minimum for v in values):
        raise ValueError(f'{owner}: every entry of {name} must be an int >= {minimum}, got '
                         f'{tuple(values)}')
    return tuple(int(v) for v in values)


def check_rate(owner: str, name: str, value) -> float:
    """A probability in [0, 1) (``drop_path_rate``, ``mask_ratio``): 1 would drop everything."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{owner}: {name} must be a number in [0, 1), got {value!r} '
                        f'({type(value).__name__})')
    if not 0.0 <= value < 1.0:  # NaN fails too
        raise ValueError(f'{owner}: {name} must be in [0, 1), got {value}')
    return float(value)


def check_size(owner: str, name: str, value, minimum: int = 1,
               why: str = '') -> Tuple[int, int]:
    """An image size, int or (H, W) of ints, as (H, W) with both sides >= ``minimum``."""
    hw = (value, value) if _is_int(value) else value
    if isinstance(hw, str) or not isinstance(hw, Sequence) or len(hw) != 2 \
            or not all(_is_int(v) for v in hw):
        raise TypeError(f'{owner}: {name} must be an int or an (H, W) pair of ints, got {value!r}')
    if min(hw) < minimum:
        raise ValueError(f'{owner}: {name}={value!r} is too small; each side must be >= {minimum}'
                         f'{why}')
    return int(hw[0]), int(hw[1])


def check_out_indices(owner: str, out_indices, num: int, what: str = 'stages',
                      name: str = 'out_indices', allow_empty: bool = False) -> Tuple[int, ...]:
    """``out_indices`` (an int or a sequence; negative counts from the end) as sorted indices in
    [0, num). Out-of-range entries raise instead of wrapping around, and so do repeats (they would
    ask for one output twice)."""
    seq = [out_indices] if _is_int(out_indices) else out_indices
    if isinstance(seq, str) or not isinstance(seq, Sequence) or not (seq or allow_empty) \
            or not all(_is_int(i) for i in seq):
        raise TypeError(f'{owner}: {name} must be an int or a non-empty sequence of ints in '
                        f'[{-num}, {num - 1}], got {out_indices!r}')
    bad = [i for i in seq if not -num <= i < num]
    if bad:
        raise ValueError(f'{owner}: {name} {bad} out of range for {num} {what}; valid indices '
                         f'are {-num}..{num - 1}')
    norm = [i % num for i in seq]
    if len(set(norm)) != len(norm):
        raise ValueError(f'{owner}: {name}={tuple(seq)} names one of the {num} {what} twice')
    return tuple(sorted(norm))


def check_heads(owner: str, dims: int, heads, name: str = 'num_heads',
                dims_name: str = 'embed_dims') -> int:
    """A head count that divides the width it splits."""
    heads = check_int(owner, name, heads)
    if dims % heads:
        raise ValueError(f'{owner}: {name}={heads} does not divide {dims_name}={dims}; use a '
                         f'divisor of {dims}')
    return heads


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
    # whether the class implements forward_masked (an instance may still switch it off, e.g. a
    # classifier's out_type; its mim_unit is then None)
    masked_modeling: bool = False
    # sizes forward takes: H and W multiples of input_multiple and at least min_input
    input_multiple: int = 1
    min_input: int = 1

    def __init__(self, with_cp: bool = False, init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp

    # ------------------------------------------------------------------------------- construction
    @classmethod
    def mim_names(cls) -> Tuple[str, ...]:
        """Names of the registered backbones that implement masked image modeling."""
        from mmpretrain.registry import MODELS
        return tuple(sorted(n for n, c in MODELS.module_dict.items() if isinstance(c, type)
                            and issubclass(c, Backbone) and c.masked_modeling))

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

    # --------------------------------------------------------------------------------- inputs
    def size_hint(self, multiple: int, minimum: int) -> str:
        """The input sizes that work, in words."""
        if multiple > 1:
            return f'H and W each a multiple of {multiple} (at least {max(multiple, minimum)})'
        return f'H and W of at least {minimum}'

    def check_input(self, x, multiple: Optional[int] = None, minimum: Optional[int] = None,
                    where: str = 'forward') -> None:
        """Validate an image batch ``x`` (B, in_channels, H, W) before it reaches a layer, so a bad
        one fails here with what is wrong and what works, not as a shape dump from inside torch.

        Empty batches (B = 0) are refused: several stems reshape with -1, and a zero-size batch is
        always a data-pipeline fault worth hearing about."""
        name = f'{type(self).__name__}.{where}'
        multiple = self.input_multiple if multiple is None else multiple
        minimum = max(self.min_input if minimum is None else minimum, 1)
        if not isinstance(x, Tensor):
            raise TypeError(f'{name}: x must be a (B, C, H, W) tensor, got {type(x).__name__}')
        if x.ndim != 4:
            fix = (f'; add the batch dimension: x[None] is (1, {", ".join(map(str, x.shape))})'
                   if x.ndim == 3 else '')
            raise ValueError(f'{name}: x must be (B, C, H, W), got shape {tuple(x.shape)}{fix}')
        if not x.is_floating_point():
            raise TypeError(f'{name}: x has dtype {x.dtype}; the model takes floating-point images '
                            '(convert and normalise them, e.g. with the data preprocessor)')
        B, C, H, W = x.shape
        if B == 0:
            raise ValueError(f'{name}: empty batch, x has shape {tuple(x.shape)}; give at least '
                             'one image')
        if C != self.in_channels:
            raise ValueError(f'{name}: x has {C} channels but the model was built with '
                             f'in_channels={self.in_channels}')
        if H < minimum or W < minimum or H % multiple or W % multiple:
            raise ValueError(f'{name}: a {H}x{W} input does not fit; sizes that work: '
                             f'{self.size_hint(multiple, minimum)}')

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
                            f'(no mim_unit / forward_masked); backbones that do: '
                            f'{list(self.mim_names())}')
        u = self.mim_unit
        if hw[0] % u or hw[1] % u or hw[0] <= 0 or hw[1] <= 0:
            raise ValueError(f'{type(self).__name__}: a {hw[0]}x{hw[1]} input is not a multiple of '
                             f'its {u} px mask unit; use sizes divisible by {u}')
        return hw[0] // u, hw[1] // u

    def check_masked_input(self, x) -> Tuple[int, int]:
        """:meth:`check_input` for ``forward_masked`` (sizes: whole mask units); returns the unit
        grid of ``x``."""
        self.unit_grid((1, 1) if self.mim_unit is None else (self.mim_unit, self.mim_unit))
        self.check_input(x, 1, 1, where='forward_masked')
        return self.unit_grid((x.shape[2], x.shape[3]))

    def forward_masked(self, x: Tensor, mask, token: Optional[Tensor] = None,
                       logit_blocks: Sequence[int] = ()) -> MaskedFeatures:
        """Encode the visible units of ``x`` (B, C_in, H, W) under ``mask``; see the module
        docstring. ``token`` (1, 1, C) replaces the units in ``mask.replaced``."""
        raise TypeError(f'{type(self).__name__} does not support masked image modeling')

    def check_mask(self, x: Tensor, mask, token: Optional[Tensor],
                   logit_blocks: Sequence[int] = ()) -> Tuple[int, int]:
        """Validate a ``forward_masked`` call; returns the unit grid (h, w) of ``x``."""
        hw = self.check_masked_input(x)
        shape = (x.shape[0], hw[0] * hw[1])
        if not all(isinstance(getattr(mask, f, None), Tensor) for f in ('visible', 'ids_keep')):
            raise TypeError(f'{type(self).__name__}: mask must be a hvit_mm.models.masking.Mask, '
                            f'got {type(mask).__name__}')
        if tuple(mask.visible.shape) != shape:
            raise ValueError(f'{type(self).__name__}: mask {tuple(mask.visible.shape)} does not '
                             f'cover the {hw[0]}x{hw[1]} units of a {x.shape[2]}x{x.shape[3]} '
                             f'input (expected {shape})')
        if mask.replaced is not None and token is None:
            raise ValueError(f'{type(self).__name__}: mask.replaced needs a token to put there')
        if logit_blocks and not self.attn_logits:
            raise ValueError(f'{type(self).__name__} cannot return attention logits')
        depth = getattr(self, 'depth', 0)
        bad = [i for i in logit_blocks if not _is_int(i) or not -depth <= i < depth]
        if bad:
            raise ValueError(f'{type(self).__name__}: logit_blocks {bad} out of range for '
                             f'{depth} blocks; valid indices are {-depth}..{depth - 1}')
        if mask.ids_keep.shape[0] != x.shape[0] or mask.ids_keep.shape[1] < 1 or \
                mask.ids_keep.dtype != torch.int64:
            raise ValueError(f'{type(self).__name__}: mask.ids_keep must be (B, K >= 1) int64 '
                             f'indices, got {tuple(mask.ids_keep.shape)} {mask.ids_keep.dtype}')
        return hw
