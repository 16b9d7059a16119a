"""What every hvit_mm pretraining algorithm returns for visualisation, and the input convention."""
from typing import List, NamedTuple, Union

from torch import Tensor


class Reconstruction(NamedTuple):
    """What every hvit_mm pretraining algorithm's ``reconstruct`` returns (for visualisation).

    image:   (B, C, H, W) predicted pixels, in the data preprocessor's normalised space (per-patch
             normalisation undone with the true patch statistics when trained with ``norm_pix``).
    visible: (B, 1, H, W) float, 1 where the encoder saw the pixel.
    """
    image: Tensor
    visible: Tensor


def first_view(inputs: Union[Tensor, List[Tensor]]) -> Tensor:
    """SelfSupDataPreprocessor hands over a list of views for multi-view pipelines; these use one."""
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ValueError('inputs is an empty list of views; give at least one (B, C, H, W) '
                             'batch')
        return inputs[0]
    return inputs
