"""Learning-rate schedules stepped once per optimisation step."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class PolyLR(LambdaLR):
    """Linear warm-up, then the 'poly' decay of segmentation work: (1 - step/total)^power.

    Args:
        optimizer: the optimiser.
        total_steps: steps of the whole run (the method passes the trainer's estimate).
        power: exponent of the decay.
        warmup_steps: steps of linear warm-up from `warmup_ratio` x lr.
        warmup_ratio: learning-rate factor at step 0.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        power: float = 0.9,
        warmup_steps: int = 0,
        warmup_ratio: float = 0.1,
    ) -> None:
        total = max(int(total_steps), 1)

        def factor(step: int) -> float:
            if step < warmup_steps:
                return warmup_ratio + (1.0 - warmup_ratio) * step / warmup_steps
            return max(1.0 - step / total, 0.0) ** power

        super().__init__(optimizer, factor)
