"""Data sets, clip sampling, transforms and the data module."""

from ssltm.data import synthetic  # noqa: F401  (registers the data set's info)
