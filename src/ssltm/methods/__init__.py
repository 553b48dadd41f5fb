"""LightningModules that train a segmenter: supervised, mean teacher, iterative self-training."""
