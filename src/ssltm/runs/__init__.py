"""Runs: fitting a method, the iterative stages, loading checkpoints, and what a run writes and
checks around them (configs, logs, resume, reports). The entry points in src/ call this layer."""
