"""Data-parallel training across processes (PyTorch DDP): the helpers ``fit`` and ``train`` use under ``torchrun``.

    torchrun --nproc-per-node 2 -m lamina train config.yaml      # or lamina.distributed.launch(2, argv)

Without ``WORLD_SIZE > 1`` in the environment every helper is a no-op and training is the single-process loop.
Under torchrun: gloo on CPU, NCCL on CUDA; every rank loads the data and fits the preprocessor itself (the split is
seeded, so every rank fits the same state) and ``check_agreement`` proves it; each global batch of
``trainer.batch_size`` rows is cut into one contiguous slice per rank; only rank 0 writes files.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import socket
import sys
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from lamina.errors import LaminaError


def requested() -> bool:
    """True when launched by torchrun (or alike) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init(device_name: str = "auto") -> bool:
    """Join the process group torchrun's environment describes (once per process); False when not distributed."""
    if not requested():
        return False
    if not dist.is_available():
        raise LaminaError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        cuda = device_name != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=10))
        atexit.register(_shutdown)
    return True


def _shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device(device_name: str) -> torch.device | None:
    """This rank's GPU when distributed on CUDA; None to let the caller choose."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return None


def wrap(net: torch.nn.Module, on: torch.device) -> torch.nn.Module:
    """``net`` in DistributedDataParallel: rank 0's weights everywhere, gradients averaged across ranks."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[on] if on.type == "cuda" else None)


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(value: torch.Tensor) -> torch.Tensor:
    if active():
        value = value.clone()
        dist.all_reduce(value)
    return value


def all_max(value: float) -> float:
    """The largest of the ranks' ``value``s, on every rank (e.g. elapsed seconds, so all ranks stop together)."""
    if not active():
        return value
    box = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return float(box)


def broadcast_tensors(tensors: dict[str, torch.Tensor]) -> None:
    """Overwrite every rank's tensors with rank 0's, in place."""
    if active():
        for value in tensors.values():
            dist.broadcast(value, src=0)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_agreement(parts: dict[str, str]) -> None:
    """Every rank passes digests of what must be equal everywhere (config, data, fitted preprocessing); a
    ``LaminaError`` on every rank names the first part and the ranks that differ from rank 0."""
    if not active():
        return
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, parts)
    for name in parts:
        others = [r for r, theirs in enumerate(gathered) if theirs.get(name) != gathered[0].get(name)]
        if others:
            raise LaminaError(
                f"the {world_size()} processes disagree on the {name}: rank(s) {', '.join(map(str, others))} differ "
                "from rank 0; every process must see the same config file and data files"
            )


def shard(index: torch.Tensor) -> tuple[torch.Tensor, int]:
    """This rank's contiguous slice of a global batch, and how many rows it holds.

    The caller scales the slice's mean loss by ``rows * world / rows_in_batch``: DDP averages gradients over ranks,
    and so the average is the gradient of the global batch's mean loss even when the last batch does not divide
    evenly. A rank left with no rows runs the batch's first row and counts 0 (factor 0), so it still joins the
    gradient all-reduce.
    """
    if not active():
        return index, len(index)
    size, here = world_size(), rank()
    cuts = [len(index) * r // size for r in range(size + 1)]
    mine = index[cuts[here]:cuts[here + 1]]
    if len(mine) == 0:
        return index[:1], 0
    return mine, len(mine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """``python -m torch.distributed.run`` starting ``nproc`` processes of ``python -m lamina ARGV`` on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--nnodes", "1",
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "lamina", *argv]


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less any ``--nproc N`` / ``--nproc=N``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def launch(nproc: int, argv: list[str]) -> None:
    """Replace this process by torchrun running ``lamina ARGV`` on ``nproc`` processes (``lamina train --nproc N``).

    ``argv`` is the command line after the program name (``sys.argv[1:]``); ``--nproc`` in it is dropped. Returns
    only when ``nproc`` is 1: then the command runs in this process."""
    if nproc < 1:
        raise LaminaError(f"--nproc {nproc}: give 1 or more processes")
    if requested():
        raise LaminaError("--nproc inside a torchrun job: give either --nproc or torchrun, not both")
    if nproc == 1:
        return
    command = torchrun_command(nproc, without_nproc(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
