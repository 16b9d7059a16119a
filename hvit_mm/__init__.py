"""hvit_mm: masked image modeling for plain and hierarchical ViTs, as an OpenMMLab plugin.

``custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)`` in a config is all that is
needed: importing the package applies the compatibility fixes for today's PyTorch (``compat``) and
registers every module into the mmpretrain, mmdet and mmseg registries.
"""
__version__ = '0.1.0'

from . import compat  # noqa: F401,E402  (first: later imports load mmengine checkpoints)
from . import registry  # noqa: F401,E402
from . import models  # noqa: F401,E402
from . import engine  # noqa: F401,E402
from . import datasets  # noqa: F401,E402
