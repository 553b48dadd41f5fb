"""Data sets, clip sampling, transforms and the data module."""

from ssltm.data import camvid, synthetic  # noqa: F401  (registers the data sets' info)
