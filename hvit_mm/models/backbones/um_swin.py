"""UM-Swin: the Swin Transformer of UM-MAE (Li et al., arXiv 2205.10063), for uniform-masking
pretraining on a compact map and for classification / dense tasks on full images.

What differs from Swin (and why):

* Relative position comes from a small MLP (``attn.posmlp``: 1×1 conv 2 -> hidden -> ReLU -> 1×1
  conv hidden -> heads) on the log-spaced true offsets ``sign(d)·log(1 + |d|)`` between the tokens
  of a window, read from a per-token (row, col) coordinate map. After compaction (see
  :mod:`hvit_mm.models.layers.compact`) window neighbours are not one token apart, so a fixed
  (2w-1)² table cannot describe them; the coordinates follow the tokens through shifts and merges.
* Patch merging is LN(C) -> Conv2d(C, 2C, 2, stride 2) and sits in the first block of stages 2-4
  (``blocks.k.downsample``), as in the official checkpoints; coordinates go ``c[::2, ::2] / 2``.
* Window 8 in pretraining on the compact map, 16 when fine-tuning on full images (the same image
  area); a map no larger than the window is one window without shift (official rule).

Parameter names are the official flat ones (``patch_embed.{proj,norm}``, ``blocks.k.{norm1,
attn.{qkv,proj,posmlp.0,posmlp.2}, norm2, mlp.{fc1,fc2}, downsample.{norm,proj}}``, ``norm``,
``fc_norm``), so official files load after a prefix-only conversion (``checkpoints/um_mae.py``);
layer decay is the official per-flat-block rule (a merge belongs to the block that holds it).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import register_model
from ..layers import (Attention, DropPath, Mlp, attend, init_conv_fan_out_, init_mae_,
                      window_partition, window_unpartition)
from ..layers.compact import compact_flags, compact_hw, compact_units, token_coords
from .base import (Backbone, MaskedFeatures, block_depth, check_heads, check_int, check_ints,
                   check_out_indices, check_rate, check_size)

PATCH = 4  # px per stem token
SHIFT_MASK = -100.0  # Swin's additive mask between regions that a cyclic shift made neighbours


# ------------------------------------------------------------------------------ shared layers
class PatchEmbed(nn.Module):
    """Conv 4×4/4 (+ optional norm): (B, C_in, H, W) -> (B, ceil(H/4), ceil(W/4), C); the
    image is zero-padded bottom/right to a multiple of 4."""

    def __init__(self, in_channels: int, embed_dims: int, norm_layer=None):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, PATCH, PATCH)
        self.norm = norm_layer(embed_dims) if norm_layer is not None else None

    def forward(self, x: Tensor) -> Tensor:
        pad_h, pad_w = -x.shape[2] % PATCH, -x.shape[3] % PATCH
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x).permute(0, 2, 3, 1)  # (B, C, h, w) -> (B, h, w, C)
        return self.norm(x) if self.norm is not None else x


class PatchMerge(nn.Module):
    """Down-sampling between stages: optional LN(C_in) per token, then Conv2d(C_in, C_out, 2, 2).
    (B, H, W, C_in) -> (B, ceil(H/2), ceil(W/2), C_out); odd maps are zero-padded bottom/right."""

    def __init__(self, in_dims: int, out_dims: int, norm_layer=None):
        super().__init__()
        self.norm = norm_layer(in_dims) if norm_layer is not None else None
        self.proj = nn.Conv2d(in_dims, out_dims, 2, 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        x = x.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        pad_h, pad_w = x.shape[2] % 2, x.shape[3] % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.proj(x).permute(0, 2, 3, 1)


def init_like_official(model: nn.Module) -> None:
    """UM-MAE's initialisation: Linear xavier-uniform (bias 0), LayerNorm 1/0, Conv2d
    normal(0, sqrt(2 / fan_out)) (bias 0), and the stem conv xavier-uniform as a Linear."""
    init_mae_(model)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            init_conv_fan_out_(m)
    w = model.patch_embed.proj.weight.data
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))


def stage_plan(depths: Sequence[int]) -> List[Tuple[int, int]]:
    """[(first block, end block)) of every stage of a flat block list."""
    ends = [sum(depths[:i + 1]) for i in range(len(depths))]
    return [(e - d, e) for e, d in zip(ends, depths)]


# ------------------------------------------------------------------------------- windowing
class Windows(NamedTuple):
    """How one block of a stage attends (shared by all blocks with the same shift).

    window, shift: window side and cyclic shift (tokens); padded_hw: the map padded to whole
    windows; offsets: (U, 2) log-spaced key - query offsets (row, col), a table covering every
    token pair of every window; index: (Bc, nW, N, N) long, each pair's entry of ``offsets``,
    Bc = 1 when every sample has the same coordinates (full images) else B; mask: (1, nW, 1, N, N)
    additive float (-100 between shifted regions, -inf on padded keys) or None.

    A window of N tokens has N² pairs but few distinct offsets (integers within ±(map side), or
    halves), so the posmlp runs on the table and its output is gathered: exact, and neither the
    MLP's compute nor its (pairs × hidden) activations grow with N², the batch or the blocks.
    """
    window: int
    shift: int
    padded_hw: Tuple[int, int]
    offsets: Tensor
    index: Tensor
    mask: Optional[Tensor]


def _shift_and_partition(x: Tensor, window: int, shift: int, padded_hw: Tuple[int, int]) -> Tensor:
    """(B, H, W, C) -> (B, nW, window², C): zero-pad to ``padded_hw``, roll by -shift,
    partition."""
    B, H, W, C = x.shape
    x = F.pad(x, (0, 0, 0, padded_hw[1] - W, 0, padded_hw[0] - H))
    if shift:
        x = torch.roll(x, (-shift, -shift), dims=(1, 2))
    return window_partition(x, window)[0].view(B, -1, window * window, C)


def offset_table(d: Tensor, max_halvings: int = 8) -> Tuple[Tensor, Tensor]:
    """(..., 2) coordinate differences -> (table (U, 2) of offsets, index (...) into it).

    The differences lie on a grid of step 2^-k (integers on full maps and at the compact map's
    first stages, halves after a merge of compacted units); the table is that grid over their
    bounding box, so a lookup replaces a sort (``unique``). k is the smallest exact one up to
    ``max_halvings`` (beyond, values are rounded to that grid).
    """
    for k in range(max_halvings + 1):
        r = d * 2 ** k
        if torch.equal(r, r.round()):
            break
    r = r.round().long()
    lo = r.flatten(0, -2).amin(0)
    size = (r.flatten(0, -2).amax(0) - lo + 1).tolist()
    index = (r[..., 0] - lo[0]) * size[1] + (r[..., 1] - lo[1])
    rows = torch.arange(size[0], device=d.device) + lo[0]
    cols = torch.arange(size[1], device=d.device) + lo[1]
    table = torch.stack(torch.meshgrid(rows, cols, indexing='ij'), -1).view(-1, 2)
    return table.float() / 2 ** k, index


def make_windows(coords: Tensor, window: int, shift: int) -> Windows:
    """Window layout of a (Bc, H, W, 2) coordinate map (float (row, col) per token)."""
    Bc, H, W, _ = coords.shape
    padded_hw = (H + (-H) % window, W + (-W) % window)
    c = _shift_and_partition(coords, window, shift, padded_hw)  # (Bc, nW, N, 2)
    d, index = offset_table(c[:, :, None, :, :] - c[:, :, :, None, :])  # pair (q, k): k - q
    offsets = d.sign() * d.abs().log1p()
    Hp, Wp = padded_hw
    nW = (Hp // window) * (Wp // window)
    N = window * window
    mask = None
    if shift:  # regions of the rolled frame, as Swin labels them (bottom/right bands of a shift)
        def bands(n: int) -> Tensor:
            i = torch.arange(n, device=coords.device)
            return (i >= n - window).long() + (i >= n - shift).long()
        region = (bands(Hp)[:, None] * 3 + bands(Wp)[None, :]).float()[None, :, :, None]
        region = window_partition(region, window)[0].view(nW, N)
        mask = torch.zeros(1, nW, 1, N, N, device=coords.device)
        mask = mask.masked_fill((region[:, :, None] != region[:, None, :])[None, :, None],
                                SHIFT_MASK)
    if padded_hw != (H, W):
        valid = coords.new_ones(1, H, W, 1)
        valid = _shift_and_partition(valid, window, shift, padded_hw)[0, :, :, 0] > 0  # (nW, N)
        mask = mask if mask is not None else torch.zeros(1, nW, 1, N, N, device=coords.device)
        mask = mask.masked_fill(~valid[None, :, None, None, :], float('-inf'))
    return Windows(window, shift, padded_hw, offsets, index, mask)


def stage_windows(coords: Tensor, window: int, shifted: bool) -> Tuple[Windows, Windows]:
    """(unshifted, shifted) layouts of a stage. A map no larger than the window in one side is a
    single window of that side, without shift (the official rule)."""
    H, W = coords.shape[1:3]
    if min(H, W) <= window:
        window, shifted = min(H, W), False
    plain = make_windows(coords, window, 0)
    return plain, (make_windows(coords, window, window // 2) if shifted else plain)


class PosMLP(nn.Sequential):
    """UM-MAE's relative-position MLP. Parameters as the official 1×1 convs (``posmlp.0``
    (hidden, 2, 1, 1), ``posmlp.2`` (heads, hidden, 1, 1)), applied as the equivalent linears on
    channels-last offsets."""

    def __init__(self, hidden: int, num_heads: int):
        super().__init__(nn.Conv2d(2, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, num_heads, 1))

    def forward(self, offsets: Tensor) -> Tensor:
        """offsets: (..., 2) log-spaced (row, col) offsets -> bias (..., heads)."""
        h = F.linear(offsets, self[0].weight.flatten(1), self[0].bias).relu()
        return F.linear(h, self[2].weight.flatten(1), self[2].bias)


class UMWindowAttention(Attention):
    """Window attention with the posmlp bias: ``qkv``/``proj`` of :class:`Attention`, the fused
    core, windows and heads folded together so a shared bias broadcasts over the batch."""

    def __init__(self, dim: int, num_heads: int, posmlp_dims: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                         proj_drop=proj_drop)
        self.posmlp = PosMLP(posmlp_dims, num_heads)

    def forward(self, x: Tensor, win: Windows) -> Tensor:
        """x: (B, nW, N, C) windows -> (B, nW, N, C)."""
        B, nW, N, C = x.shape
        h, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).view(B, nW, N, 3, h, d).permute(3, 0, 1, 4, 2, 5)  # (3, B, nW, h, N, d)
        q, k, v = qkv.reshape(3, B, nW * h, N, d).unbind(0)
        bias = self.posmlp(win.offsets)[win.index].movedim(-1, 2)  # (Bc, nW, h, N, N)
        if win.mask is not None:
            bias = bias + win.mask
        bias = bias.reshape(-1, nW * h, N, N).to(q.dtype)  # broadcasts over B when Bc = 1
        out = attend(q, k, v, bias, self.attn_drop if self.training else 0.0)  # (B, nW·h, N, d)
        out = out.view(B, nW, h, N, d).transpose(2, 3).reshape(B, nW, N, C)
        return self.proj_drop(self.proj(out))


class UMSwinBlock(nn.Module):
    """[downsample ->] x + attn(norm1(x)) in (shifted) windows; x + mlp(norm2(x)).
    Maps are (B, H, W, C); ``downsample`` (the previous stage's merge) halves H, W first."""

    def __init__(self, dim: int, num_heads: int, posmlp_dims: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_path: float = 0.0, norm_layer=nn.LayerNorm,
                 downsample: Optional[nn.Module] = None):
        super().__init__()
        self.downsample = downsample
        self.norm1 = norm_layer(dim)
        self.attn = UMWindowAttention(dim, num_heads, posmlp_dims, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, win: Windows) -> Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        B, H, W, C = x.shape
        ws, s = win.window, win.shift
        y = _shift_and_partition(self.norm1(x), ws, s, win.padded_hw)  # (B, nW, ws², C)
        y = window_unpartition(self.attn(y, win).flatten(0, 1), ws, win.padded_hw, win.padded_hw)
        if s:
            y = torch.roll(y, (s, s), dims=(1, 2))
        x = x + self.drop_path(y[:, :H, :W])
        return x + self.drop_path(self.mlp(self.norm2(x)))


# ------------------------------------------------------------------------- shared contract
class UMBackbone(Backbone):
    """What UM-Swin and UM-PVT share: the masked stem (compaction, token replacement), outputs,
    checkpoint adaptation and layer depth. Subclasses build ``patch_embed``, ``blocks`` (flat,
    merges inside the first block of a stage), set :attr:`stages` / :attr:`depth` and implement
    :meth:`stem` (tokens plus a per-token auxiliary map: coordinates or position table) and
    :meth:`encode` (stem maps -> raw stage maps)."""

    mim_unit = 16
    mim_mask = 'uniform'
    masked_modeling = True
    OUT_TYPES = ('featmap', 'avg_featmap')
    stages: List[Tuple[int, int]] = []
    depth: int = 0

    def _setup(self, img_size, in_channels: int, depths: Sequence[int], out_indices,
               out_type: str, norm_cfg: dict, drop_path_rate: float = 0.0,
               dims: Sequence[int] = (), heads: Sequence[int] = ()):
        """Common constructor part (every argument checked here); returns the norm layer
        factory."""
        name = type(self).__name__
        if not isinstance(norm_cfg, dict) or norm_cfg.get('type') != 'LN':
            raise ValueError(f"{name}: norm_cfg type must be 'LN', got {norm_cfg}")
        depths = check_ints(name, 'depths', depths)
        n = len(depths)
        for i, (d, h) in enumerate(zip(check_ints(name, 'embed_dims', dims, n),
                                       check_ints(name, 'num_heads', heads, n))):
            check_heads(name, d, h, f'num_heads[{i}]', f'stage {i} width')
        check_rate(name, 'drop_path_rate', drop_path_rate)
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'{name}: out_type must be one of {self.OUT_TYPES}, got {out_type!r}')
        out_indices = check_out_indices(name, out_indices, n)
        if out_type == 'avg_featmap' and out_indices != (n - 1,):
            raise ValueError(f"{name}: out_type='avg_featmap' pools the last stage; set "
                             f'out_indices=({n - 1},)')
        self.img_size = check_size(name, 'img_size', img_size)
        self.in_channels = check_int(name, 'in_channels', in_channels)
        self.depths, self.depth, self.stages = depths, sum(depths), stage_plan(depths)
        self.out_indices = out_indices
        self.out_type = out_type
        self.num_layers = self.depth + 2
        eps = norm_cfg.get('eps', 1e-6)
        return lambda d: nn.LayerNorm(d, eps=eps)

    def _build_outputs(self, dims: Sequence[int], norm_layer) -> None:
        """Output norms, ``feature_info`` and the MIM contract."""
        last = len(dims) - 1
        if self.out_type == 'avg_featmap':  # a classifier; its MIM entry point is switched off
            self.fc_norm = norm_layer(dims[last])
            self.norm, self.mim_unit = None, None
            self.feature_info = [dict(num_chs=dims[last], reduction=PATCH * 2 ** last,
                                      module='fc_norm')]
        else:  # the last stage's norm is the pretrained encoder's final norm (MIM uses it too)
            self.norm = norm_layer(dims[last])
            self.out_norms = nn.ModuleDict(
                {str(s): norm_layer(dims[s]) for s in self.out_indices if s != last})
            self.feature_info = [
                dict(num_chs=dims[s], reduction=PATCH * 2 ** s,
                     module='norm' if s == last else f'out_norms.{s}') for s in self.out_indices]
        self.mim_dims = dims[0]
        # the last map has one token per 2×2 units (stride 32, 16 px units), compact or full
        self.mim_out = dict(num_chs=dims[last], unit_tokens=1, units_per_token=2)
        self.mim_stages = ()

    # ----------------------------------------------------------------------------- checkpoints
    def pretrained_allowances(self):
        """A pretrained file lacks ``fc_norm`` (classifiers start it fresh) and the new output
        norms of dense models; ``norm`` of a pretrained file is extra in a classifier."""
        return ('fc_norm.', 'out_norms.'), ('norm.',)

    def adapt_checkpoint(self, sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Pure: converted dict (bare or ``backbone.``) -> this model's keys. A fine-tuned file
        (``fc_norm``, no ``norm``) loaded for dense tasks starts the last output norm from
        ``fc_norm``; a dense model drops ``fc_norm``."""
        sd = super().adapt_checkpoint(sd)
        if self.norm is not None and 'norm.weight' not in sd and 'fc_norm.weight' in sd:
            sd['norm.weight'], sd['norm.bias'] = sd['fc_norm.weight'], sd['fc_norm.bias']
        if self.out_type != 'avg_featmap':
            sd = {k: v for k, v in sd.items() if not k.startswith('fc_norm.')}
        return sd

    def layer_depth(self, name: str) -> int:
        """Official rule on the flat block list: stem 0, ``blocks.k`` (its merge included)
        k + 1, everything else (final / output norms, ``fc_norm``) depth + 1."""
        return block_depth(name, self.depth, stem=('patch_embed', 'pos_embed'))

    # --------------------------------------------------------------------------------- forward
    def stem(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, C_in, H, W) -> (tokens (B, H/4, W/4, C), auxiliary map (1, H/4, W/4, A))."""
        raise NotImplementedError

    def encode(self, x: Tensor, aux: Tensor, keep: Sequence[int]) -> List[Tensor]:
        """Stem tokens (B, h, w, C) + auxiliary map (Bc, h, w, A), Bc = 1 or B -> the raw
        (B, h_s, w_s, C_s) maps of the stages in ``keep`` (ascending)."""
        raise NotImplementedError

    def token_embed(self, token: Tensor) -> Tensor:
        """The replacement token (1, 1, C) as the stem emits tokens."""
        return token

    def embed_masked(self, x: Tensor, mask, token: Optional[Tensor],
                     units_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tuple[int, int]]:
        """Stem of :meth:`forward_masked` -> (tokens (B, h', w', C), auxiliary (Bc, h', w', A),
        compact unit grid (gh, gw)); h' = 4·gh. Units in ``mask.replaced`` hold the token."""
        grid = compact_hw(mask, units_hw, type(self).__name__)
        if grid[0] % 2 or grid[1] % 2:
            need = 2 * self.mim_unit * (units_hw[0] // grid[0])  # a uniform mask halves the grid
            raise ValueError(f'{type(self).__name__}: the last stage covers 2x2 units, so the '
                             f'encoded unit grid {grid} must have even sides (input sizes '
                             f'divisible by {need})')
        tokens, aux = self.stem(x)
        if grid != units_hw:  # uniform mask: the kept units' token blocks, dense
            tokens = compact_units(tokens, mask.ids_keep, units_hw, grid)
            aux = compact_units(aux, mask.ids_keep, units_hw, grid)
        if mask.replaced is not None:
            flags = compact_flags(mask.replaced, mask.ids_keep, grid, self.mim_unit // PATCH)
            tok = self.token_embed(token).to(tokens.dtype).view(1, 1, 1, -1)
            tokens = torch.where(flags[..., None], tok, tokens)
        return tokens, aux, grid

    def forward_masked(self, x: Tensor, mask, token: Optional[Tensor] = None,
                       logit_blocks: Sequence[int] = ()) -> MaskedFeatures:
        """UM-MAE pretraining (uniform mask) or SimMIM (every unit visible).

        Args:
            x: (B, C_in, H, W), H and W multiples of 32.
            mask: over the (H/16, W/16) units, True = visible: either a uniform mask (K = N/4,
                one per 2×2 grid, ``ids_keep`` in grid order; the encoder runs on the compacted
                quarter-size map) or every unit visible (K = N, ``ids_keep`` = arange; the full
                map). ``mask.replaced`` units enter as ``token`` (1, 1, C_embed).
        Returns:
            MaskedFeatures: tokens (B, gh/2 · gw/2, C_last), the ``norm``-ed last-stage map in
            raster order; compact_hw = (gh, gw) = (h/2, w/2) or (h, w) units, each token
            covering 2×2 of them; prefix (B, 0, C_last).
        """
        if self.norm is None:
            raise TypeError(f"{type(self).__name__}: out_type='avg_featmap' builds a classifier "
                            'without the encoder norm; use the default featmap for MIM')
        units_hw = self.check_mask(x, mask, token, logit_blocks)
        tokens, aux, grid = self.embed_masked(x, mask, token, units_hw)
        out = self.norm(self.encode(tokens, aux, keep=(len(self.stages) - 1,))[0])
        B, C = out.shape[0], out.shape[-1]
        return MaskedFeatures(out.reshape(B, -1, C), out.new_zeros(B, 0, C), compact_hw=grid)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """x: (B, C_in, H, W), any size (padded internally) -> ``featmap``: one normalised
        (B, C_s, ceil(H / 2^(s+2)), ceil(W / 2^(s+2))) map per ``out_indices`` entry (strides
        4/8/16/32, as :attr:`feature_info`); ``avg_featmap``: one (B, C_last) vector, ``fc_norm``
        of the mean last-stage token (the official classifier's pre-logits)."""
        self.check_input(x)
        feats = self.encode(*self.stem(x), keep=self.out_indices)
        if self.out_type == 'avg_featmap':
            return (self.fc_norm(feats[0].mean(dim=(1, 2))),)
        last = len(self.stages) - 1
        outs = []
        for s, f in zip(self.out_indices, feats):
            norm = self.norm if s == last else self.out_norms[str(s)]
            outs.append(norm(f).permute(0, 3, 1, 2).contiguous())  # NHWC -> NCHW
        return tuple(outs)


# -------------------------------------------------------------------------------- backbone
@register_model()
class UMSwin(UMBackbone):
    """UM-MAE's Swin for mmpretrain, mmdet and mmseg.

    Args:
        arch: key of :attr:`arch_zoo` or a dict with ``embed_dims, depths, num_heads``
            (optional ``posmlp_dims``, default 32).
        img_size: (H, W) or int the model is built for (MIM decoders store their tables for
            it; the encoder itself takes any size).
        in_channels: image channels.
        window_size: 8 for pretraining on the compact map, 16 for fine-tuning on full images.
        mlp_ratio, qkv_bias: block MLP width ratio, bias on qkv.
        drop_path_rate: stochastic depth, linear from 0 over all blocks.
        out_indices: stages returned by :meth:`forward`. Pretraining uses only the last stage
            (``forward_masked``): set ``(3,)`` there so no output norm sits unused (DDP).
        out_type: ``'featmap'``: NCHW maps at strides 4/8/16/32, each through its norm
            (``out_norms.i``; the last stage's is the pretrained ``norm``); ``'avg_featmap'``:
            classification, one (B, C) vector = ``fc_norm`` of the mean last-stage token (the
            official fine-tuning head's input; pair it with mmpretrain's ``LinearClsHead``).
        norm_cfg: ``dict(type='LN', eps=1e-6)``; LayerNorm is the only type.
        with_cp: activation checkpointing per block while training.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads official UM-MAE files
            (pretrained or fine-tuned) or hvit_mm ones strictly, see :meth:`adapt_checkpoint`.
    """

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['t', 'tiny'], dict(embed_dims=96, depths=(2, 2, 6, 2),
                                            num_heads=(3, 6, 12, 24), posmlp_dims=32)),
        **dict.fromkeys(['s', 'small'], dict(embed_dims=96, depths=(2, 2, 18, 2),
                                             num_heads=(3, 6, 12, 24), posmlp_dims=32)),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=128, depths=(2, 2, 18, 2),
                                            num_heads=(4, 8, 16, 32), posmlp_dims=32)),
        **dict.fromkeys(['l', 'large'], dict(embed_dims=192, depths=(2, 2, 18, 2),
                                             num_heads=(6, 12, 24, 48), posmlp_dims=64)),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads')
    # out_indices=(3,): MIM reads only the last stage, so no output norm would sit unused
    tiny_cfg = dict(arch=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                              posmlp_dims=8), img_size=64, window_size=4, out_indices=(3,))

    def __init__(self, arch: Union[str, dict] = 'tiny', img_size: Union[int, Sequence[int]] = 256,
                 in_channels: int = 3, window_size: int = 8, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_path_rate: float = 0.0,
                 out_indices: Sequence[int] = (0, 1, 2, 3), out_type: str = 'featmap',
                 norm_cfg: dict = dict(type='LN', eps=1e-6), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(with_cp=with_cp, init_cfg=init_cfg)
        cfg = self.resolve_arch(arch)
        depths, heads = tuple(cfg['depths']), tuple(cfg['num_heads'])
        C = check_int('UMSwin', 'embed_dims', cfg['embed_dims'])
        dims = [C * 2 ** i for i in range(len(depths))]
        norm_layer = self._setup(img_size, in_channels, depths, out_indices, out_type, norm_cfg,
                                 drop_path_rate, dims, heads)
        self.window_size = check_int('UMSwin', 'window_size', window_size)
        check_int('UMSwin', 'posmlp_dims', cfg.get('posmlp_dims', 32))

        self.patch_embed = PatchEmbed(in_channels, dims[0], norm_layer)
        dpr = torch.linspace(0, drop_path_rate, self.depth).tolist()
        self.blocks = nn.ModuleList()
        for s, (start, end) in enumerate(self.stages):
            for i in range(start, end):
                merge = PatchMerge(dims[s - 1], dims[s], norm_layer) if s and i == start else None
                self.blocks.append(UMSwinBlock(dims[s], heads[s], cfg.get('posmlp_dims', 32),
                                               mlp_ratio, qkv_bias, dpr[i], norm_layer, merge))
        self._build_outputs(dims, norm_layer)
        init_like_official(self)

    def stem(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """-> (normalised tokens (B, H/4, W/4, C), token coordinates (1, H/4, W/4, 2))."""
        tokens = self.patch_embed(x)
        return tokens, token_coords(tokens.shape[1:3], x.device)

    def token_embed(self, token: Tensor) -> Tensor:
        """Swin normalises its stem tokens, so the replacement token goes through the same norm
        (official UM-MAE; its PVT does not)."""
        return self.patch_embed.norm(token)

    def encode(self, x: Tensor, coords: Tensor, keep: Sequence[int]) -> List[Tensor]:
        """Tokens (B, h, w, C) at coordinates (Bc, h, w, 2) -> raw maps of the stages in ``keep``.
        Window layouts (offsets, masks) are built once per stage and shift, for all its blocks."""
        outs = []
        for s, (start, end) in enumerate(self.stages):
            if s:  # the merge keeps each 2×2 cell's top-left coordinate, halved (official)
                coords = coords[:, ::2, ::2] / 2
            wins = stage_windows(coords, self.window_size, self.depths[s] > 1)
            for i in range(start, end):
                x = self.run_block(self.blocks[i], x, wins[(i - start) % 2])
            if s in keep:
                outs.append(x)
        return outs
