"""Where this process stands among a run's training processes, and how many there are on this computer.

Read by the training code, the model loader and the memory estimate; imports nothing of the project, so that any of
them can ask. Starting the processes is backend/jobs/launcher.py's work.
"""
import os
from dataclasses import dataclass

AGENT_ENV = "TUNELOOP_AGENT_PID"  # the launcher's pid, so that a rank started after it died ends at once


@dataclass(frozen=True)
class Ranks:
    """This process's place among a run's training processes, as torchrun describes it (0 of 1 when alone)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def here(cls) -> "Ranks":
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        """Rank 0 alone writes: the log, metrics, status, checkpoints, the adapter and the probe."""
        return self.rank == 0

    @property
    def launched(self) -> bool:
        return "RANK" in os.environ and AGENT_ENV in os.environ

    def join(self, hardware):
        """Join the run's other processes now (Accelerate's shared state, which the Trainer uses later as well), so that
        decisions made before the Trainer exists are the same everywhere. None when alone."""
        if self.world == 1:
            return None
        from accelerate import PartialState
        return PartialState(cpu=hardware.device != "cuda")

    def same_everywhere(self, state, value):
        """Rank 0's `value`, on every rank."""
        if state is None:
            return value
        from accelerate.utils import broadcast_object_list
        return broadcast_object_list([value], from_process=0)[0]

    def made_by_main(self, state, make):
        """`make()`, called by rank 0 alone, on every rank: for work that one process does and writes down (answers
        the model generates) and that every process needs the same."""
        return self.same_everywhere(state, make() if self.main else None)


def local_gpus() -> int:
    if os.environ.get("TUNELOOP_FORCE_CPU") == "1":
        return 0
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_processes(config, hardware, gpus: int | None = None) -> int:
    """Processes on this computer: the setting, or 0 (auto): one per GPU here, one on a computer without a GPU.
    hardware: backend.models.loading.detect_hardware()'s answer."""
    if config.processes:
        return config.processes
    if hardware.device != "cuda":
        return 1
    return max(1, local_gpus() if gpus is None else gpus)


def device_map():
    """Where a process loads the model on a GPU: its own card; none when FSDP or DeepSpeed place the shards."""
    if sharded():
        return None
    return {"": Ranks.here().local_rank}


def sharded() -> bool:
    """True in a process whose model FSDP or DeepSpeed splits (Accelerate's launcher says so in the environment)."""
    return any(os.environ.get(name, "").lower() == "true" for name in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"))
