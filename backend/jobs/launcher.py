"""Training on several processes, GPUs or computers: how a run's training processes are started.

One process is the runner's own spawned worker (backend/jobs/worker.py). Several processes are started by
Hugging Face Accelerate's launcher (`accelerate launch`) from a config file the run writes for itself
(runs/<id>/accelerate.yaml). Accelerate starts them through torch's elastic agent (torchrun): it starts one process
("rank") per device, tells each where the others are, and when one dies it ends the others and says which one it was.
Tuneloop writes no process group code: the Trainer joins the group that torchrun describes (gloo on the CPU, NCCL on
GPUs), and Accelerate wraps the model in DDP, FSDP or DeepSpeed.

    app (runner thread) -> python -m backend.jobs.launcher RUN HOME   (its own session; records why a rank failed)
                             -> accelerate launch -> torchrun agent -> python -m backend.jobs.rank_worker RUN HOME (x N)

On a CPU, 1 process stays the spawned worker: no agent, no TCP port, nothing that can be left waiting for a rank
that never comes, and the same process that every single-process test and measurement covers. Setting
TUNELOOP_LAUNCH=always sends 1 process through the launcher as well (benchmarks/gpu.py does, to check that path on a GPU).
"""
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

from backend import workspace
from backend.ranks import AGENT_ENV, local_gpus, local_processes

ROOT = Path(__file__).resolve().parents[2]
FORCE_ENV = "TUNELOOP_LAUNCH"
CONFIG_NAME = "accelerate.yaml"
# Accelerate starts several processes only through torchrun, which its config calls MULTI_GPU (its MULTI_CPU type
# needs MPI's mpirun instead). Processes that find no GPU join with gloo on the CPU.
DISTRIBUTED_TYPE = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed-zero3": "DEEPSPEED"}
# PEFT's documented FSDP set-up for LoRA and QLoRA (docs/source/accelerate/fsdp.md): FSDP1, whole-model weights
# loaded once on the CPU of each computer's first process and sent to the others, adapter saved whole at the end.
FSDP_CONFIG = {
    "fsdp_version": 1, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "fsdp_backward_prefetch": "BACKWARD_PRE",
    "fsdp_cpu_ram_efficient_loading": True, "fsdp_forward_prefetch": False, "fsdp_offload_params": False,
    "fsdp_sharding_strategy": "FULL_SHARD", "fsdp_state_dict_type": "SHARDED_STATE_DICT",
    "fsdp_sync_module_states": True, "fsdp_use_orig_params": False,
}
DEEPSPEED_CONFIG = {"zero_stage": 3, "offload_optimizer_device": "none", "offload_param_device": "none",
                    "zero3_init_flag": True, "zero3_save_16bit_model": True, "gradient_clipping": 1.0}


# --- how many processes, where ---------------------------------------------------------------------------------

def world_size(config, hardware=None) -> int:
    if hardware is None:
        from backend.models.loading import detect_hardware
        hardware = detect_hardware()
    return local_processes(config, hardware) * config.machines


def uses_launcher(config, hardware=None) -> bool:
    return world_size(config, hardware) > 1 or os.environ.get(FORCE_ENV) == "always"


def check_devices(config, hardware, gpus: int | None = None):
    """Refuse, in words, a layout this computer cannot run."""
    from backend.errors import ConfigError
    processes = local_processes(config, hardware, gpus)
    if hardware.device != "cuda":
        if config.strategy != "ddp":
            raise ConfigError("strategy", f"{config.strategy} splits the model across GPUs, and this computer has "
                              "none. Use ddp (each process holds the whole model), or train on a computer with GPUs.")
        return
    gpus = local_gpus() if gpus is None else gpus
    if processes > gpus:
        raise ConfigError("processes", f"{processes} processes, but this computer has {gpus} GPU(s): each process "
                          f"needs a card of its own. Set processes to {gpus} or fewer (0: one per GPU).")
    if config.strategy == "deepspeed-zero3":
        import importlib.util
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("strategy", "deepspeed-zero3 needs DeepSpeed, which is not installed: run "
                              "`pip install deepspeed`, or choose fsdp, which needs nothing more.")


# --- the launch ------------------------------------------------------------------------------------------------

def accelerate_config(config, hardware) -> dict:
    """The Accelerate config file a run is launched with (what `accelerate config` would write)."""
    host, _, port = config.main_address.rpartition(":")
    several_machines = config.machines > 1
    values = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": DISTRIBUTED_TYPE[config.strategy],
        "num_processes": world_size(config, hardware),
        "num_machines": config.machines,
        "machine_rank": config.machine_rank,
        "main_process_ip": host if several_machines else "127.0.0.1",
        "main_process_port": int(port) if several_machines else 0,  # 0: Accelerate picks a free port
        "rdzv_backend": "static",
        "same_network": True,
        "gpu_ids": "all",
        # The Trainer sets the precision itself (bf16/fp16 from backend.models.loading.detect_hardware); the same here.
        "mixed_precision": {"bfloat16": "bf16", "float16": "fp16"}.get(hardware.dtype_name, "no"),
        "downcast_bf16": "no",
        "use_cpu": hardware.device != "cuda",
        "debug": False,
    }
    if config.strategy == "fsdp":
        values["fsdp_config"] = dict(FSDP_CONFIG)
    elif config.strategy == "deepspeed-zero3":
        values["deepspeed_config"] = dict(DEEPSPEED_CONFIG)
    return values


def launch_arguments(run_id: str, home: str, config_file: Path) -> list[str]:
    """`accelerate launch` arguments: the config file, then the module every rank runs."""
    return ["--config_file", str(config_file), "--monitor_interval", "0.5",
            "-m", "backend.jobs.rank_worker", run_id, str(home)]


def launch_command(run_id: str, home: str, config_file: Path) -> list[str]:
    """The same launch as a command line (shown in the log; what a person would type)."""
    return [sys.executable, "-m", "accelerate.commands.launch", *launch_arguments(run_id, home, config_file)]


def worker_process(run_id: str, home: str, store, standby: "Standby | None" = None):
    """What the runner starts for a run; every kind answers start(), pid, join() and exitcode. `standby`: a worker
    started ahead, used when the run trains in one process and the standby fits it (Standby.fits)."""
    try:
        launched = uses_launcher(store.config(run_id))
    except Exception:  # a config that cannot be read: the single worker fails the run with the reason, in words
        launched = False
    if not launched:
        if standby is not None and standby.fits(home):
            return standby.take(run_id)
        return spawned_worker(run_id, home)
    return LaunchedRun(run_id, home)


def spawned_worker(run_id: str, home: str):
    """A fresh process for one run (worker.main), not started yet."""
    from backend.jobs import worker
    return multiprocessing.get_context("spawn").Process(target=worker.main, args=(run_id, home), daemon=True)


class Standby:
    """A worker started before a run needs it (the web app's runner keeps one). It imports torch, Transformers, TRL
    and PEFT while nobody waits (8 s of the 9.8 s before a quick run's first step on 2 cores) and then waits; Start
    hands it the run, which then trains exactly as in a worker spawned for it (worker.main). Used only while the
    app's environment is the one it started with: a run must not train with settings older than the app's. What the
    libraries set for themselves on import (torch's OMP_WAIT_POLICY, TORCHINDUCTOR_CACHE_DIR) is left out of that
    comparison; the standby reports it when it is ready."""

    def __init__(self, home: str):
        from backend.jobs import worker
        context = multiprocessing.get_context("spawn")
        self.home, self.env, self.run_id = str(home), dict(os.environ), None
        self.self_set: set[str] = set()  # variables its imports set, known once it is ready
        self._ready = False
        self._conn, child = context.Pipe()
        self.process = context.Process(target=worker.standby, args=(child, self.home), daemon=True,
                                       name="tuneloop-standby")
        self.process.start()
        child.close()

    def ready(self, timeout: float = 0) -> bool:
        """Whether it has imported the training libraries (waiting up to `timeout` seconds)."""
        if not self._ready and self.process.is_alive():
            try:
                if self._conn.poll(timeout):
                    self.self_set = set(self._conn.recv())
                    self._ready = True
            except (EOFError, OSError):  # it ended: is_alive says so
                pass
        return self._ready and self.process.is_alive()

    def fits(self, home: str) -> bool:
        if self.run_id is not None or not self.process.is_alive() or self.home != str(home):
            return False
        self.ready()
        now = dict(os.environ)
        return all(now.get(k) == self.env.get(k) for k in set(now) | set(self.env) if k not in self.self_set)

    def take(self, run_id: str) -> "Standby":
        self.run_id = run_id
        return self

    def close(self):
        """End it unless it trains a run (that run's worker is watched and ended by the runner)."""
        if self.run_id is None and self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self._conn.close()

    # the worker handle the runner watches, as a multiprocessing.Process
    def start(self):
        try:
            self._conn.send(self.run_id)
        except OSError:  # it ended after fits() said it was alive: the run gets a worker of its own
            self.process = spawned_worker(self.run_id, self.home)
            self.process.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def join(self, timeout: float | None = None):
        self.process.join(timeout)

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def terminate(self):
        self.process.terminate()

    def kill(self):
        self.process.kill()


class LaunchedRun:
    """`python -m backend.jobs.launcher RUN HOME` in a session of its own (so that its process group can be signalled
    as one), its output appended to the run's train.log."""

    def __init__(self, run_id: str, home: str):
        self.run_id, self.home = run_id, str(home)
        self.popen: subprocess.Popen | None = None

    def start(self):
        folder = Path(self.home) / "runs" / self.run_id
        folder.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, TUNELOOP_HOME=self.home, PYTHONPATH=path, PYTHONUNBUFFERED="1")
        with open(folder / workspace.RAW_LOG, "ab") as log:
            self.popen = subprocess.Popen([sys.executable, "-m", "backend.jobs.launcher", self.run_id, self.home],
                                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def join(self, timeout: float | None = None):
        if self.popen:
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def is_alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def terminate(self):
        if self.is_alive():
            self.popen.send_signal(signal.SIGTERM)

    def kill(self):
        if self.is_alive():
            self.popen.kill()


# --- the launcher process ----------------------------------------------------------------------------------------

def main(argv=None) -> int:
    """Write the run's Accelerate config, launch its ranks, and record why the launch failed, naming the rank."""
    run_id, home = (argv if argv is not None else sys.argv[1:])[:2]
    os.environ["TUNELOOP_HOME"] = home
    from backend.jobs.worker import _exit_with_parent
    _exit_with_parent()  # the app's end ends the launcher; torchrun's agent then ends the ranks
    os.environ[AGENT_ENV] = str(os.getpid())

    import traceback

    import yaml

    from backend.db import connect
    from backend.errors import TuneloopError
    from backend.models.loading import detect_hardware
    from backend.runs import RunStore
    from backend.jobs.worker import explain_failure

    store = RunStore(connect())
    folder = workspace.run_dir(run_id)
    # here, not in the ranks: a stop asked for from now on is kept
    (folder / workspace.STOP_FILE).unlink(missing_ok=True)
    world = 1
    try:
        config = store.config(run_id)
        hardware = detect_hardware()
        check_devices(config, hardware)
        world = world_size(config, hardware)
        config_file = folder / CONFIG_NAME
        workspace.write_text_atomic(config_file, yaml.safe_dump(accelerate_config(config, hardware), sort_keys=False))
        print(f"Launching {world} training process{'es' if world > 1 else ''} ({config.strategy.upper()}, "
              f"computer {config.machine_rank} of {config.machines}): "
              + " ".join(launch_command(run_id, home, config_file)), flush=True)
        run_accelerate(launch_arguments(run_id, home, config_file))
    except TuneloopError as exc:
        return _failed(store, run_id, str(exc))
    except Exception as exc:
        from torch.distributed.elastic.multiprocessing.api import SignalException
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        if isinstance(exc, ChildFailedError):
            rank, failure = first_cause(exc.failures)
            return _failed(store, run_id, describe_rank_failure(rank, world, failure.exitcode, failure.message))
        if isinstance(exc, SignalException):  # the agent has ended the ranks; end as a signalled worker ends
            print(f"The training processes were ended ({exc.sigval.name}).", flush=True)
            _die_of(exc.sigval)
        traceback.print_exc()
        return _failed(store, run_id, explain_failure(exc, folder))
    run = store.get(run_id)
    if run["status"] == "running":
        if config.machine_rank > 0:  # rank 0 is on computer 0, which keeps the results
            store.set_status(run_id, "done", reason=f"Trained as computer {config.machine_rank} of {config.machines}; "
                             f"the adapter, metrics and checkpoints are on computer 0 ({config.main_address}).")
        else:
            return _failed(store, run_id, "The training processes ended without saying how the run went. "
                           "Details are in the run's log.")
    return 0


def run_accelerate(arguments: list[str]):
    """`accelerate launch ARGUMENTS`, in this process, so that a failed rank arrives as torch's ChildFailedError."""
    from accelerate.commands.launch import launch_command as accelerate_launch
    from accelerate.commands.launch import launch_command_parser
    accelerate_launch(launch_command_parser().parse_args(arguments))


def first_cause(failures: dict) -> tuple:
    """(rank, failure) of the rank that most likely caused the others to fail: one ended by a signal other than the
    SIGTERM the agent sends, before one that ended with an error (the others fail on the lost connection), earliest
    first, then the lowest rank."""
    def order(item):
        rank, failure = item
        code = failure.exitcode if failure.exitcode is not None else 0
        return (0 if code < 0 and code != -signal.SIGTERM else 1 if code < 0 else 2, failure.timestamp, rank)
    return min(failures.items(), key=order)


def describe_rank_failure(rank: int, world: int, exitcode: int, message) -> str:
    """Why a rank failed, for people: which one, how (a signal, or its error), and where its log is."""
    if isinstance(message, dict):  # written by the rank's @record handler: {"message": "...", "extraInfo": ...}
        message = message.get("message", "")
    who = f"Training process rank {rank} (of {world})"
    where = f"Details are in {workspace.log_name(rank)}"
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = (" The system may have run out of memory: try a smaller batch_size or max_length."
                if name == "SIGKILL" else "")
        return f"{who} was ended by the system ({name}); the others were stopped.{hint} {where}."
    text = str(message or "").strip().splitlines()
    first = text[-1] if text else ""
    if "out of memory" in str(message).lower():
        return (f"{who} ran out of memory. Lower batch_size or max_length, or use 4-bit (QLoRA). {where}.")
    if first and not first.startswith("To enable traceback"):
        return f"{who} stopped with an error: {first[:300]}. {where}."
    return f"{who} ended unexpectedly (exit code {exitcode}); the others were stopped. {where}."


def _failed(store, run_id: str, reason: str) -> int:
    """A reason recorded by rank 0 itself (it knows best) is kept; otherwise this one is."""
    print(f"Run failed: {reason}", flush=True)
    if store.get(run_id)["status"] == "running":
        store.set_status(run_id, "failed", reason=reason)
    return 1


def _die_of(sig: int):
    """End with the signal that ended the ranks, recording nothing: the runner that sent it (a stop that took too
    long, a hang) records its own reason, and anyone else's signal reads as it does for the single worker."""
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)


if __name__ == "__main__":
    sys.exit(main())
