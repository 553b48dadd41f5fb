"""OmegaConf resolvers of the suite's configs.

`${ssltm.num_classes:<source class>}` reads the class count from the data set's `DatasetInfo`
(the one place where classes are defined), e.g. `${ssltm.num_classes:${data.source._target_}}`.
"""

from __future__ import annotations

from hydra.utils import get_class
from omegaconf import OmegaConf


def _num_classes(source_target: str) -> int:
    return get_class(source_target).info.num_classes


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("ssltm.num_classes", _num_classes, replace=True)
