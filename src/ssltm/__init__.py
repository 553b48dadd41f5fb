"""SSLTM: semi-supervised video semantic segmentation (Lao et al., CVPR 2023) on Lightning + Hydra."""

__version__ = "0.1.0"

from ssltm.utils.resolvers import register_resolvers

register_resolvers()
