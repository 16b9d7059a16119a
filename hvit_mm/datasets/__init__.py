"""Data guards for every codebase: skip unreadable samples, clip bad polygons, refuse empty datasets.

:func:`add_data_guards` switches a runner config to them (tools/train.py calls it through
``hvit_mm.engine.guards.add_default_guards``).
"""
from .checks import DataError, EmptyDatasetError, checked_dataset, diagnose_empty
from .bad_data import (BadDataError, BadDataHook, SafeLoadImageFromFile, clip_instances,
                       clip_polygon, find_safe_loaders)
from .wiring import add_data_guards

__all__ = ['BadDataError', 'BadDataHook', 'DataError', 'EmptyDatasetError', 'SafeLoadImageFromFile',
           'add_data_guards', 'checked_dataset', 'clip_instances', 'clip_polygon', 'diagnose_empty',
           'find_safe_loaders']
