"""MAE-Lite's distilled MAE (D-MAE, Wang et al., ICML 2023): MAE plus attention distillation from a
frozen MAE-pretrained teacher during pretraining.

The teacher encodes exactly the student's visible patches (same ``ids_keep``), without gradients and
always in eval mode. The student's pre-softmax attention logits of one block, mapped across heads by a
1×1 convolution, are matched to the teacher's logits of its corresponding block with MSE. An optional
hidden-feature term matches the student's final (normed) tokens, through a linear map, to the
teacher's; it is off by default, as in MAE-Lite.
"""
import numbers
from typing import Dict, List, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import register_model
from .mae import MaskedAutoencoder, build_part


@register_model(scopes=('mmpretrain',))
class DistilledMAE(MaskedAutoencoder):
    """Args (besides :class:`MaskedAutoencoder`'s, passed by keyword):
        teacher: backbone config of the teacher (a backbone with ``attn_logits``), normally
            ``dict(type='ViT', arch='base', init_cfg=dict(type='Pretrained', checkpoint=...))``;
            its weights are loaded by ``init_weights`` (the runner calls it before training).
        student_block / teacher_block: blocks whose logits are matched (MAE-Lite: the last, -1).
        attn_loss_weight: weight of the attention term (MAE-Lite: 1.0).
        hidden_loss_weight: weight of the hidden-feature term; 0 (default) builds no adapter.
    The logits' token count must agree, i.e. student and teacher share patch size and prefix tokens.
    """

    def __init__(self, backbone: Dict, neck: Dict, teacher: Dict, student_block: int = -1,
                 teacher_block: int = -1, attn_loss_weight: float = 1.0,
                 hidden_loss_weight: float = 0.0, **kwargs):
        super().__init__(backbone, neck, **kwargs)
        self.teacher = build_part('DistilledMAE', 'teacher', teacher)
        for who, m in (('student', self.backbone), ('teacher', self.teacher)):
            if not getattr(m, 'attn_logits', False):
                raise TypeError(f'DistilledMAE: the {who} {type(m).__name__} cannot return '
                                'attention logits (attn_logits=False)')
        if self.teacher.mim_unit != self.backbone.mim_unit:
            raise ValueError(f'DistilledMAE: teacher unit {self.teacher.mim_unit} != student '
                             f'unit {self.backbone.mim_unit}; both must see the same patches')
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        for what, blk, m in (('student_block', student_block, self.backbone),
                             ('teacher_block', teacher_block, self.teacher)):
            if isinstance(blk, bool) or not isinstance(blk, numbers.Integral):
                raise TypeError(f'DistilledMAE: {what} must be a block index (int), got {blk!r}')
            if not -m.depth <= blk < m.depth:  # no wrapping around: 7 is not block 1 of 6
                raise ValueError(f'DistilledMAE: {what}={blk} is out of range for a '
                                 f'{m.depth}-block encoder; valid indices are '
                                 f'{-m.depth}..{m.depth - 1}')
        for what, w in (('attn_loss_weight', attn_loss_weight),
                        ('hidden_loss_weight', hidden_loss_weight)):
            if isinstance(w, bool) or not isinstance(w, numbers.Real) or not w >= 0:
                raise ValueError(f'DistilledMAE: {what} must be a number >= 0, got {w!r}')
        self.student_block = student_block % self.backbone.depth
        self.teacher_block = teacher_block % self.teacher.depth
        self.attn_loss_weight = attn_loss_weight
        self.hidden_loss_weight = hidden_loss_weight
        # 1×1 conv over the head axis of (B, heads, T, T) logits; used even for equal head counts
        # (MAE-Lite does), keyed by the student block so converted MAE-Lite adapters load
        self.attn_adapters = nn.ModuleDict({str(self.student_block): nn.Conv2d(
            self.backbone.num_heads, self.teacher.num_heads, 1, bias=False)})
        self.hidden_adapter = nn.Linear(self.backbone.embed_dims, self.teacher.embed_dims,
                                        bias=False) if hidden_loss_weight > 0 else None

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen statistics and no drop path, whatever the runner asks
        return self

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, **kwargs
             ) -> Dict[str, Tensor]:
        """inputs: (B, C, H, W). Returns ``loss_rec``, ``loss_attn`` (and ``loss_hidden``);
        mmengine sums every key containing ``loss``."""
        x = self.check_inputs(inputs)
        mask = self.draw_mask(x)
        feats = self.backbone.forward_masked(x, mask, logit_blocks=(self.student_block,))
        pred = self.neck(feats, mask, self.units_hw(x))
        losses = dict(loss_rec=self.reconstruction_loss(x, pred, mask))

        with torch.no_grad():  # the teacher sees exactly the student's visible patches
            teach = self.teacher.forward_masked(x, mask, logit_blocks=(self.teacher_block,))
        s_attn = self.attn_adapters[str(self.student_block)](feats.logits[0])  # (B, h_t, T, T)
        losses['loss_attn'] = self.attn_loss_weight * F.mse_loss(
            s_attn.float(), teach.logits[0].float())
        if self.hidden_adapter is not None:
            tokens = torch.cat([feats.prefix, feats.tokens], dim=1)  # (B, P + K, C)
            t_tokens = torch.cat([teach.prefix, teach.tokens], dim=1)
            losses['loss_hidden'] = self.hidden_loss_weight * F.mse_loss(
                self.hidden_adapter(tokens).float(), t_tokens.float())
        return losses
