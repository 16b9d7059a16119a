"""Models: layers shared by every backbone, masking, backbones, necks, MIM algorithms."""
from . import algorithms, backbones, necks  # noqa: F401  (registers everything)
