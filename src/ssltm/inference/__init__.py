"""Inference: evaluation passes (whole frame or sliding window), streaming prediction of a video,
and what prediction writes (label PNGs, overlays, videos)."""
