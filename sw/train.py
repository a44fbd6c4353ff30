"""Training with the scheduled (asynchronous) execution in the loop: "unlayered backprop".

:func:`train` runs the float network of :class:`~unlayered.sw.quantize.QuantScheduledSNN` under
the configured scheduler and group size (``F``), back-propagates through the whole unrolled
schedule (surrogate gradients, :mod:`unlayered.sw.scheduled`) and updates with Adam. It writes
into the output directory:

=================== =========================================================================
``config.json``     the resolved :class:`~unlayered.sw.config.TrainConfig`
``checkpoint.pt``   the last epoch: ``{"format", "version", "state_dict", "config", "network",
                    "dataset", "history"}``, plain values only, so ``torch.load(path,
                    weights_only=True)`` reads it
``best.pt``         the same for the epoch with the best validation accuracy
``history.json``    one record per epoch: loss, training and validation accuracy, seconds
``train.log``       the progress lines
=================== =========================================================================

Losses (``loss``): ``ce_per_step`` applies cross-entropy to each step's output spike counts (as
logits) and averages over the steps, as the paper's code does; ``ce_cumulative`` to the counts
accumulated up to each step, averaged; ``ce_total`` to the total counts.

Data parallel: under ``torchrun`` (``WORLD_SIZE`` > 1) every process takes its share of each
batch (``batch_size`` is the global batch), the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` (``gloo`` on CPU, ``nccl`` on GPUs) and only
rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unlayered.sim import EventSamples, UnlayeredError

from .config import TrainConfig, save_config
from .events_torch import InputBatch, from_events
from .quantize import QuantScheduledSNN, layer_scales
from .scheduled import ExecConfig
from .surrogate import atan, fast_sigmoid

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainResult",
    "build_network",
    "decide",
    "evaluate_float",
    "exec_config",
    "load_checkpoint",
    "load_dataset",
    "loss_fn",
    "network_from_checkpoint",
    "open_dataset",
    "take",
    "to_batch",
    "train",
]

CHECKPOINT_FORMAT = "unlayered-checkpoint"
CHECKPOINT_VERSION = 1
DENSE_LIMIT = 50_000_000  # convert a whole split to one dense InputBatch below this many cells


# ---------------------------------------------------------------------------------------------
# Data


def open_dataset(
    name: str,
    *,
    num_steps: int | None = None,
    seed: int = 0,
    path: str | None = None,
    options: dict[str, Any] | None = None,
):
    """A dataset by name (:func:`unlayered.sw.data.load_dataset`)."""
    from unlayered.sw.data import load_dataset as load

    return load(name, num_steps=num_steps, seed=seed, path=path, **(options or {}))


def load_dataset(config: TrainConfig):
    """The dataset of a training config."""
    return open_dataset(
        config.dataset,
        num_steps=config.num_steps,
        seed=config.seed,
        path=config.dataset_path,
        options=config.dataset_options,
    )


def to_batch(events: EventSamples, n_inputs: int, num_steps: int, device="cpu") -> InputBatch:
    return from_events(events, n_inputs, num_steps=num_steps, device=device)


def take(batch: InputBatch, idx: torch.Tensor) -> InputBatch:
    """Some samples of a batch (their ids and labels kept)."""
    idx = idx.to(batch.spikes.device)
    order = batch.order[idx]
    # keep the event dimension as small as the selection needs
    width = int((order >= 0).sum(-1).max()) if order.numel() else 0
    return replace(
        batch,
        spikes=batch.spikes[idx],
        order=order[..., :width],
        num_steps=batch.num_steps[idx],
        sample_ids=batch.sample_ids[idx],
        labels=batch.labels[idx],
    )


class _Split:
    """One split as a source of batches: dense once if small enough, else per batch."""

    def __init__(self, events: EventSamples, n_inputs: int, num_steps: int, device):
        self.events, self.n_inputs, self.num_steps = events, n_inputs, num_steps
        self.device = device
        self.full = None
        if len(events) * num_steps * n_inputs <= DENSE_LIMIT:
            self.full = to_batch(events, n_inputs, num_steps, device)
        self.labels = torch.as_tensor(np.asarray(events.labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.events)

    def batch(self, idx: torch.Tensor) -> InputBatch:
        if self.full is not None:
            return take(self.full, idx)
        sub = self.events.select(idx.cpu().numpy())
        return to_batch(sub, self.n_inputs, self.num_steps, self.device)


# ---------------------------------------------------------------------------------------------
# Network, loss, decisions


def exec_config(config: TrainConfig, **changes: Any) -> ExecConfig:
    """The execution of training (float mode), from a resolved config."""
    scales = layer_scales([config.threshold], config.threshold_int)
    fields = dict(
        scheduler=config.scheduler,
        group_size=config.group_size,
        prioritized_input=config.prioritized_input,
        seed=config.scheduler_seed,
        momentum_buckets=config.momentum_buckets,
        momentum_shift=config.momentum_shift,
        momentum_scale=1.0 / scales[0],  # bucket the overshoot as the integer model will
        max_groups_per_step=config.max_groups_per_step,
        decision=config.decision,
        membrane_bits=config.membrane_bits,
        leak_shift=config.leak_shift,
    )
    fields.update(changes)
    return ExecConfig(**fields)


def build_network(config: TrainConfig, n_inputs: int, n_classes: int) -> QuantScheduledSNN:
    """The (untrained) network of a resolved config, Xavier-uniform weights."""
    sizes = (*config.hidden, n_classes)
    spike = atan if config.surrogate == "atan" else fast_sigmoid
    net = QuantScheduledSNN(
        n_inputs,
        sizes,
        scales=layer_scales([config.threshold] * len(sizes), config.threshold_int),
        qat=config.qat,
        weight_bits=config.weight_bits,
        threshold=config.threshold,
        beta=config.beta,
        reset=config.reset,
        config=exec_config(config),
        spike_grad=spike(config.surrogate_param),
        refractory_dropout=config.refractory_dropout,
    )
    for fc in net.fc:
        torch.nn.init.xavier_uniform_(fc.weight, gain=config.init_gain)
    return net


def loss_fn(counts: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Cross-entropy on output spike counts ``(B, T, C)`` (see the module docstring)."""
    B, T, C = counts.shape
    if kind == "ce_total" or T == 0:
        return F.cross_entropy(counts.sum(1), labels)
    logits = counts if kind == "ce_per_step" else counts.cumsum(1)
    return F.cross_entropy(logits.reshape(B * T, C), labels.repeat_interleave(T))


def decide(counts: torch.Tensor) -> torch.Tensor:
    """The ``argmax_spike_count`` decision of per-step counts ``(B, T, C)``: the largest total,
    ties to the lowest index, ``-1`` if no output fired."""
    total = counts.sum(1)
    pred = total.argmax(1)  # torch's argmax returns the first maximal index
    return torch.where(total.sum(1) > 0, pred, -1)


@torch.no_grad()
def evaluate_float(
    net: QuantScheduledSNN, split, batch_size: int = 256, decision: str | None = None
) -> float:
    """Accuracy of ``net`` (float mode, its own scheduler) on a split (a :class:`_Split`)."""
    was = net.training
    net.eval()
    correct = 0
    n = len(split)
    for lo in range(0, n, batch_size):
        idx = torch.arange(lo, min(n, lo + batch_size))
        batch = split.batch(idx)
        counts = net(batch)
        if (decision or net.config.decision) == "first_to_threshold":
            pred = torch.where(counts.sum((1, 2)) > 0, _first(counts), -1)
        else:
            pred = decide(counts)
        correct += int((pred.cpu() == batch.labels.cpu()).sum())
    net.train(was)
    return correct / max(1, n)


def _first(counts: torch.Tensor) -> torch.Tensor:
    """Lowest-index output of the first step with an output spike."""
    any_t = counts.sum(2) > 0
    t = any_t.float().argmax(1)
    row = counts[torch.arange(len(t)), t]
    return (row > 0).float().argmax(1)


# ---------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class TrainResult:
    """What :func:`train` returns (everything is also in ``out_dir`` on rank 0)."""

    config: TrainConfig
    out_dir: Path
    history: list[dict[str, Any]]
    state_dict: dict[str, torch.Tensor]
    checkpoint: Path | None
    best_val_accuracy: float
    test_accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """JSON round trip: only plain values go into a checkpoint (``weights_only`` loading)."""
    return json.loads(json.dumps(value, default=_item))


def _item(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else str(x)


def _checkpoint(net, config, dataset_info, history) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "config": config.to_dict(),
        "network": {"n_inputs": net.n_inputs, "sizes": list(net.sizes), "scales": net.scales},
        "dataset": _plain(dataset_info),
        "history": _plain(history),
    }


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; raise :class:`UnlayeredError` naming the
    file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UnlayeredError(f"{path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means "not a checkpoint"
        raise UnlayeredError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UnlayeredError(f"{path}: field 'format': not an unlayered training checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise UnlayeredError(f"{path}: field 'version': {ckpt.get('version')!r} is not supported")
    return ckpt


def network_from_checkpoint(ckpt: dict[str, Any]) -> tuple[QuantScheduledSNN, TrainConfig]:
    """The trained float network of a checkpoint and its resolved config."""
    config = TrainConfig.from_dict(ckpt["config"])
    net_info = ckpt["network"]
    net = build_network(config, net_info["n_inputs"], net_info["sizes"][-1])
    net.load_state_dict(ckpt["state_dict"])
    net.eval()
    return net, config


def _save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise UnlayeredError(f"{path}: cannot write ({exc.strerror or exc})") from None


# ---------------------------------------------------------------------------------------------
# Training


def _distributed() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def train(
    config: TrainConfig,
    *,
    dataset=None,
    log: Callable[[str], None] | None = print,
    progress: bool = True,
) -> TrainResult:
    """Train a network as ``config`` says and write the outputs into ``config.out``.

    Parameters
    ----------
    dataset
        A ``Dataset`` (``unlayered.sw.data`` interface) to use instead of loading
        ``config.dataset`` (tests pass small ones).
    log
        Called with each progress line (rank 0 only); ``None`` prints nothing.
    progress
        Show tqdm progress bars (rank 0 only).
    """
    rank, world, local_rank = _distributed()
    ddp = world > 1
    if ddp:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo"
            dist.init_process_group(backend=backend)
    main = rank == 0
    lines: list[str] = []

    def say(message: str) -> None:
        if main:
            lines.append(message)
            if log is not None:
                log(message)

    torch.manual_seed(config.seed)
    if dataset is None:
        dataset = load_dataset(config)
    cfg = config.resolved(dataset.num_steps)
    if cfg.num_steps != dataset.num_steps:
        cfg = replace(cfg, num_steps=int(dataset.num_steps))
    if cfg.threads is None:
        small = dataset.n_inputs + sum(cfg.hidden) + dataset.n_classes <= 1024
        cfg = replace(cfg, threads=1 if small else torch.get_num_threads())
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, dataset, rank, world, local_rank, ddp, say, lines, progress)
    finally:
        torch.set_num_threads(threads_before)


def _train(cfg, dataset, rank, world, local_rank, ddp, say, lines, progress) -> TrainResult:
    main = rank == 0
    out_dir = Path(cfg.out)
    device = torch.device(cfg.device)
    if device.type == "cuda" and ddp:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if main:
        save_config(cfg, out_dir / "config.json")

    # the splits: a validation part held out of the training split
    gen = np.random.default_rng(cfg.seed)
    train_ev = dataset.train
    if cfg.max_train_samples is not None and cfg.max_train_samples < len(train_ev):
        train_ev = train_ev.select(np.sort(gen.permutation(len(train_ev))[: cfg.max_train_samples]))
    test_ev = dataset.test
    if cfg.max_test_samples is not None and cfg.max_test_samples < len(test_ev):
        test_ev = test_ev.select(np.arange(cfg.max_test_samples))
    n_val = round(cfg.val_fraction * len(train_ev))
    perm = gen.permutation(len(train_ev))
    val_ev = train_ev.select(np.sort(perm[:n_val])) if n_val else test_ev
    fit_ev = train_ev.select(np.sort(perm[n_val:])) if n_val else train_ev
    T, n_in = cfg.num_steps, dataset.n_inputs
    fit = _Split(fit_ev, n_in, T, device)
    val = _Split(val_ev, n_in, T, device)
    say(
        f"data     {dataset.name}: {len(fit)} training, {len(val)} validation"
        f"{'' if n_val else ' (the test split)'}, {len(test_ev)} test samples, "
        f"{n_in} inputs, {dataset.n_classes} classes, {T} steps"
    )

    net = build_network(cfg, n_in, dataset.n_classes).to(device)
    gen_t = torch.Generator(device=device)
    gen_t.manual_seed(cfg.seed + 1000 * rank)
    net.generator = gen_t
    model: torch.nn.Module = net
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(net, device_ids=ids)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    say(
        f"network  {n_in} -> {' -> '.join(map(str, net.sizes))}, scheduler {cfg.scheduler} "
        f"F={cfg.group_size or 'all'}, loss {cfg.loss}, {'QAT ' if cfg.qat else ''}"
        f"{cfg.weight_bits}-bit weights, device {device}" + (f", {world} processes" if ddp else "")
    )
    dataset_info = {
        "name": dataset.name,
        "n_inputs": n_in,
        "n_classes": dataset.n_classes,
        "num_steps": T,
        "encoding": dict(dataset.encoding),
        "seed": cfg.seed,
        "path": cfg.dataset_path,
        "options": dict(cfg.dataset_options),
        "val_sample_ids": [int(i) for i in np.asarray(val_ev.sample_ids)] if n_val else None,
    }

    history: list[dict[str, Any]] = []
    best, ckpt_path = -1.0, None
    per_rank = max(1, cfg.batch_size // world)
    n_batches = math.ceil(len(fit) / (per_rank * world)) if len(fit) else 0
    if main and (out_dir / "best.pt").exists():
        (out_dir / "best.pt").unlink()
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        g = torch.Generator()
        g.manual_seed(cfg.seed * 100_003 + epoch)
        order = torch.randperm(len(fit), generator=g)
        net.train()
        total_loss, correct, seen = 0.0, 0, 0
        bar = range(n_batches)
        if progress and main:
            from tqdm import tqdm

            bar = tqdm(bar, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        for b in bar:
            chunk = order[b * per_rank * world : (b + 1) * per_rank * world]
            mine = chunk[rank::world]
            if len(mine) == 0:  # an uneven last batch: every rank must still take part
                mine = chunk[:1]
            batch = fit.batch(mine)
            counts = model(batch)
            loss = loss_fn(counts, batch.labels, cfg.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(mine)
            correct += int((decide(counts.detach()) == batch.labels).sum())
            seen += len(mine)
            if progress and main:
                bar.set_postfix(loss=f"{float(loss):.3f}", acc=f"{correct / seen:.3f}")
        val_acc = evaluate_float(net, val) if main or not ddp else 0.0
        record = {
            "epoch": epoch + 1,
            "loss": total_loss / max(1, seen),
            "train_accuracy": correct / max(1, seen),
            "val_accuracy": val_acc,
            "seconds": time.perf_counter() - start,
        }
        history.append(record)
        say(
            f"epoch {epoch + 1:3d}  loss {record['loss']:.4f}"
            f"  train {100 * record['train_accuracy']:.1f} %"
            f"  val {100 * val_acc:.1f} %  ({record['seconds']:.1f} s)"
        )
        if main:
            ckpt = _checkpoint(net, cfg, dataset_info, history)
            ckpt_path = out_dir / "checkpoint.pt"
            _save(ckpt, ckpt_path)
            if val_acc > best:
                best = val_acc
                _save(ckpt, out_dir / "best.pt")
            _write(out_dir / "history.json", json.dumps(history, indent=1) + "\n")
    if main and cfg.epochs == 0:
        ckpt_path = out_dir / "checkpoint.pt"
        _save(_checkpoint(net, cfg, dataset_info, history), ckpt_path)
    test_acc = None
    if main:
        test_acc = evaluate_float(net, _Split(test_ev, n_in, T, device))
        say(f"test     {100 * test_acc:.1f} % (float model, scheduler {cfg.scheduler})")
        _write(out_dir / "train.log", "\n".join(lines) + "\n")
    if ddp:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(
        config=cfg,
        out_dir=out_dir,
        history=history,
        state_dict={k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        checkpoint=ckpt_path,
        best_val_accuracy=best,
        test_accuracy=test_acc,
    )


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise UnlayeredError(f"{path}: cannot write ({exc.strerror or exc})") from None
