"""VSPW (Miao et al., CVPR 2021): label conventions of its official layout.

Raw masks: 0 = "others" (ignored), v in 1..124 is class v-1, 254 and 255 are ignored.
"""

from __future__ import annotations

import numpy as np

from ssltm.data.info import IGNORE_INDEX

VSPW_NUM_CLASSES = 124


def remap_vspw_mask(raw: np.ndarray) -> np.ndarray:
    """Raw VSPW mask values -> train ids (0..123, IGNORE_INDEX for 0, 254, 255 and anything else)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[1 : VSPW_NUM_CLASSES + 1] = np.arange(VSPW_NUM_CLASSES, dtype=np.uint8)
    return lut[raw]
