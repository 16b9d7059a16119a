"""MIM pretraining algorithms (mmpretrain): each owns its mask, decoder and loss."""
from .mae import MaskedAutoencoder  # noqa: F401,E402
from .distilled_mae import DistilledMAE  # noqa: F401,E402
from .simmim import SimMIM  # noqa: F401,E402
