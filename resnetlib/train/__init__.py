"""The training engine: typed configuration, the paper's schedule, ``fit``, checkpoints, DDP."""

from .config import DataConfig, ModelConfig, OptimConfig, TrainConfig, WarmupConfig, load_config
from .evaluation import evaluate
from .loop import NonFiniteLossError, RunResult, fit, seed_everything
from .lock import RunLock, RunLockedError
from .run_folder import ConfigMismatchError, RunFolderError
from .runs import cached_fit, run_key

__all__ = [
    "TrainConfig", "DataConfig", "ModelConfig", "OptimConfig", "WarmupConfig", "load_config",
    "fit", "cached_fit", "run_key", "RunResult", "evaluate", "NonFiniteLossError", "RunFolderError",
    "seed_everything", "RunLock", "RunLockedError", "ConfigMismatchError",
]
