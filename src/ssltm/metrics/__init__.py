"""Metrics defined once, used by training, evaluation, scoring and sweeps."""

from ssltm.metrics.miou import MeanIoU
from ssltm.metrics.video_consistency import VideoConsistency

__all__ = ["MeanIoU", "VideoConsistency"]
