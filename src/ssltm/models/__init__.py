"""Plain nn.Modules: backbones, temporal modules, heads and whole segmenters."""
