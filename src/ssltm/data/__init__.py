"""Data sets, clip sampling, transforms and the data module."""

from ssltm.data import camvid, cityscapes, synthetic, vspw  # noqa: F401  (registers the data sets' info)
