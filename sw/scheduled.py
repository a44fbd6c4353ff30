"""Differentiable asynchronous (scheduled) execution of a dense spiking network, in PyTorch.

This is ``docs/semantics.md`` vectorized over a batch: every sample advances group by group in
lockstep (a sample with nothing pending idles), following the contract's sections 5 and 6:
leak, prioritized or pending input, groups of up to ``F`` pending spikes chosen by a scheduler
(``sync``, ``fifo``, ``random``, ``momentum``), delivery to refractory-masked targets, evaluation
of the touched neurons, refractoriness until the end of the step, ``max_groups_per_step`` and the
``first_to_threshold`` early stop.

Two numeric modes:

- **float** (training): real weights and membranes, leak ``v * beta``, no saturation; spikes are
  a Heaviside with a surrogate gradient (:mod:`.surrogate`) and backpropagation runs through the
  whole unrolled schedule. The scheduler's choices (which spikes form a group) are integer index
  computations and are not differentiated; the reset is detached (as the usual "detach reset").
- **integer** (the deployed model, :meth:`ScheduledSNN.from_model`): int64 tensors, leak
  ``trunc(v * leak / 2^leak_shift)``, per-add saturation at ``membrane_bits`` in delivery order.
  It reproduces the reference simulator (``unlayered.sim``) bit for bit: trace, group log,
  output counts, membranes.

Layout: one membrane tensor ``v`` ``(B, N)`` over all neurons (global index, layer by layer).
Pending entries live in "pending columns": source ``p0 + col``, where ``p0 = n_inputs`` with
prioritized input (only neurons can be pending) and ``0`` otherwise; one extra dummy column
absorbs padding. Each group is a ``(B, k)`` tensor of columns (``k <= F``); delivery gathers the
selected sources' rows of a fan-out table ``(P + 1, N)`` (``embedding_bag``), so the work per
group scales with the selected spikes, not with the network.

Schedulers, vectorized over the batch:

- key schedulers keep a ``(B, P + 1)`` float64 key per pending column (``inf`` = not pending) and
  take the ``k`` smallest keys (``topk``): ``fifo`` key = arrival (inputs by rank, then spikes by
  ``(group + 1) * S + neuron``, which is evaluation order); ``momentum`` adds
  ``(top bucket - bucket) * 2^40``; ``sync`` key = source index, and a group is cut where the
  layer changes; ``momentum_exact`` (float training studies only, **not deployable**) orders
  spikes by overshoot, largest first.
- ``random`` keeps the contract's list with swap-remove and a per-sample xorshift32 state
  (int64 tensors masked to 32 bits), seeded by :func:`unlayered.sim.rng.sample_seed`. On CPU
  the picks of a group run in one numba loop over the batch (the same
  :mod:`unlayered.sim.rng` functions); elsewhere in a torch loop over the ``k`` picks.

Gradients. By default (``backward="manual"``) the float forward runs without autograd and
keeps a tape per group (selected columns, masks, pre-reset membranes); a hand-written reverse
pass (:func:`_backward`) then propagates the adjoints of the membranes and of each pending
spike back through the groups and steps, applying the surrogate derivative where a neuron was
evaluated. ``backward="autograd"`` lets torch record every operation instead; both give the
same gradient (tested to 1e-9), the manual one several times faster on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlayered.sim.model import LayerSpec, Model, SchedulerSpec
from unlayered.sim.rng import sample_seed

from .events_torch import InputBatch, from_dense
from .surrogate import SpikeFn, atan

__all__ = [
    "SCHEDULERS",
    "ExecConfig",
    "RunOutput",
    "SampleRecord",
    "ScheduledSNN",
    "SimState",
    "run_scheduled",
]

SCHEDULERS = ("sync", "fifo", "random", "momentum", "momentum_exact")
MASK32 = 0xFFFFFFFF
INF = float("inf")
BUCKET_STRIDE = float(1 << 40)  # momentum key = (top - bucket) * 2^40 + fifo key (< 2^34)
INPUT_FIRST = -float(1 << 52)  # momentum_exact: inputs before every spike, by rank


@dataclass(frozen=True)
class ExecConfig:
    """How the network executes (semantics sections 2, 5, 6, 7).

    ``momentum_scale`` (float mode): the overshoot is multiplied by it and rounded up to an
    integer before bucketing, as the deployed integer model would see it (``scale`` of the
    quantization). ``integer`` selects the deployed integer arithmetic, with ``membrane_bits``
    and ``leak_shift``.
    """

    scheduler: str = "fifo"
    group_size: int = 1
    prioritized_input: bool = True
    seed: int = 1
    momentum_buckets: int = 8
    momentum_shift: int = 0
    momentum_scale: float = 1.0
    max_groups_per_step: int = 0
    decision: str = "argmax_spike_count"
    integer: bool = False
    membrane_bits: int = 16
    leak_shift: int = 8

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; expected one of {SCHEDULERS}")
        if self.scheduler == "momentum_exact" and self.integer:
            raise ValueError("momentum_exact is a float training ordering, not deployable")
        if self.decision not in ("argmax_spike_count", "first_to_threshold"):
            raise ValueError(f"unknown decision rule {self.decision!r}")
        if self.group_size < 0 or self.max_groups_per_step < 0:
            raise ValueError("group_size and max_groups_per_step must be >= 0")


@dataclass
class SimState:
    """The explicit state of a batch between groups (returned at the end of a run; ``v`` is
    detached there when the hand-written backward is used).

    Members
    -------
    v
        ``(B, N)`` membranes (float, or int64 in integer mode).
    notref
        ``(B, N)`` bool, ``True`` where the neuron is not refractory.
    keys
        ``(B, P + 1)`` float64 pending keys (key schedulers), ``inf`` where not pending.
    plist, pcount
        ``random``: ``(B, P + 1)`` int64 pending list (columns) and ``(B,)`` its length.
    rng
        ``(B,)`` int64 xorshift32 states (``random``).
    sv
        ``(B, P + 1)`` float, ``backward="autograd"`` only: each pending source's spike value
        in the current step (1 in the forward pass; it carries the gradient to the spike that
        produced it). ``None`` in the state returned after a run.
    done
        ``(B,)`` bool: the sample has decided (``first_to_threshold``) and runs no more.
    """

    v: torch.Tensor
    notref: torch.Tensor
    keys: torch.Tensor | None
    plist: torch.Tensor | None
    pcount: torch.Tensor | None
    rng: torch.Tensor | None
    sv: torch.Tensor | None
    done: torch.Tensor


@dataclass
class SampleRecord:
    """The execution record of one sample, comparable with ``unlayered.sim.SampleResult``."""

    sample_id: int
    trace: np.ndarray  # (K, 3) (step, group, neuron)
    group_log: np.ndarray  # (G, 3) (step, group, synops)
    output_counts: np.ndarray
    membranes: np.ndarray  # (steps, N)
    steps: int
    dropped: int
    input_events: int


@dataclass
class RunOutput:
    """What :func:`run_scheduled` returns: per-step output spike counts ``(B, T, n_out)``
    (differentiable in float mode), the final state, and the record if asked for."""

    counts: torch.Tensor
    state: SimState
    records: list[SampleRecord] | None = None


# ---------------------------------------------------------------------------------------------
# Static tables of a network (no gradient): layer of each neuron and source, fan-out structure


@dataclass
class _Tables:
    n_in: int
    sizes: tuple[int, ...]
    N: int
    S: int
    H: int  # hidden neurons: 0 .. H-1; outputs H .. N-1
    p0: int  # first source that can be pending
    P: int  # pending columns (dummy column = P)
    nc0: int  # column of neuron 0
    col_layer: torch.Tensor  # (P + 1,) layer of each column's source (-1 inputs, dummy: big)
    col_fanout: torch.Tensor  # (P + 1,) fan-out size (synops)
    touch: torch.Tensor  # (P + 1, N) float 0/1: the fan-out structure
    layer0: torch.Tensor  # (N,) bool, neurons of layer 0
    hidden_cols: torch.Tensor  # (H,) int64 columns of hidden neurons
    sync_key: torch.Tensor  # (H,) float64 source index of hidden neurons
    fifo_key: torch.Tensor  # (H,) float64 neuron index (evaluation order)


def _tables(n_in: int, sizes: tuple[int, ...], prioritized: bool, device) -> _Tables:
    N = sum(sizes)
    S = n_in + N
    H = N - sizes[-1]
    p0 = n_in if prioritized else 0
    P = S - p0
    nc0 = n_in - p0
    starts = np.concatenate(([0], np.cumsum(sizes)))
    layer_of = np.repeat(np.arange(len(sizes)), sizes)
    src_layer = np.concatenate((np.full(n_in, -1), layer_of))
    col_layer = np.concatenate((src_layer[p0:], [1 << 20]))
    touch = np.zeros((P + 1, N), dtype=np.float32)
    fanout = np.zeros(P + 1, dtype=np.int64)
    for c in range(P):
        tl = col_layer[c] + 1
        if tl < len(sizes):
            touch[c, starts[tl] : starts[tl + 1]] = 1
            fanout[c] = sizes[tl]

    def t(x, dtype=None):
        return torch.as_tensor(x, device=device, dtype=dtype)

    return _Tables(
        n_in=n_in,
        sizes=tuple(sizes),
        N=N,
        S=S,
        H=H,
        p0=p0,
        P=P,
        nc0=nc0,
        col_layer=t(col_layer, torch.int64),
        col_fanout=t(fanout, torch.int64),
        touch=t(touch),
        layer0=t(layer_of == 0),
        hidden_cols=t(np.arange(H) + nc0, torch.int64),
        sync_key=t(np.arange(H) + n_in, torch.float64),
        fifo_key=t(np.arange(H), torch.float64),
    )


def _fanout_table(weights: list[torch.Tensor], tb: _Tables) -> torch.Tensor:
    """``(P + 1, N)``: row ``col`` = the weights from source ``p0 + col`` to every neuron."""
    sizes, n_out = tb.sizes, tb.sizes[-1]
    if tb.p0 == 0:
        table = torch.block_diag(*[w.t() for w in weights])  # inputs and hidden neurons
        return F.pad(table, (0, 0, 0, n_out + 1))
    if len(weights) == 1:
        return weights[0].new_zeros((tb.N + 1, tb.N))
    table = torch.block_diag(*[w.t() for w in weights[1:]])  # hidden neuron rows
    return F.pad(table, (sizes[0], 0, 0, n_out + 1))


# ---------------------------------------------------------------------------------------------
# Pure pieces of one group


def xorshift32(x: torch.Tensor) -> torch.Tensor:
    """Marsaglia's xorshift32 on int64 tensors holding 32-bit words."""
    x = x ^ ((x << 13) & MASK32)
    x = x ^ (x >> 17)
    return x ^ ((x << 5) & MASK32)


def leak(v: torch.Tensor, factor: torch.Tensor, integer: bool, leak_shift: int) -> torch.Tensor:
    """Semantics 5.1: ``trunc(v * leak / 2^leak_shift)`` (integer) or ``v * beta`` (float)."""
    if integer:
        return torch.div(v * factor, 1 << leak_shift, rounding_mode="trunc")
    return v * factor


def deliver_saturating(
    v: torch.Tensor, rows: torch.Tensor, notref: torch.Tensor, vmin: int, vmax: int
) -> torch.Tensor:
    """Semantics 5.3 in integer mode: add ``rows[:, f]`` for ``f`` in group order, clamping
    after each source (each source adds one weight to each of its targets)."""
    add = rows * notref[:, None, :]
    if add.shape[1] == 0:
        return v
    running = v[:, None, :] + add.cumsum(1)
    if bool(running.min() >= vmin) and bool(running.max() <= vmax):
        return running[:, -1]  # no partial sum leaves the range: clamping never acts
    for f in range(add.shape[1]):
        v = (v + add[:, f]).clamp_(vmin, vmax)
    return v


def evaluate(
    u: torch.Tensor,
    touched: torch.Tensor,
    notref: torch.Tensor,
    thr: torch.Tensor,
    sub_mask: torch.Tensor,
    thr_sub: torch.Tensor,
    spike_fn: SpikeFn | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Semantics 5.4 on every neuron at once: fire where touched, not refractory and ``u > thr``.

    ``sub_mask`` is 1 for ``subtract`` neurons and 0 for ``zero`` ones, ``thr_sub = thr *
    sub_mask``. Returns ``(spike, fired, v, e)``: ``spike`` the spike (differentiable through
    ``spike_fn``; without one, ``fired``), ``fired`` bool, ``v`` after the reset (``zero``: 0,
    ``subtract``: ``u - thr``; detached from the spike), ``e`` the evaluated neurons.
    """
    e = touched & notref
    if spike_fn is None:
        fired = e & (u > thr)
        spike = fired
    else:
        spike = spike_fn(u - thr) * e
        fired = spike.detach() > 0
    v = torch.where(fired, u * sub_mask - thr_sub, u)
    return spike, fired, v, e


# ---------------------------------------------------------------------------------------------
# The run


def _record_samples(
    rec: dict[str, Any], inp: InputBatch, steps_run: torch.Tensor, tb: _Tables
) -> list[SampleRecord]:
    tg = np.array(rec["tg"], dtype=np.int64).reshape(-1, 2)
    if rec["fired"]:
        fired = torch.stack(rec["fired"]).cpu().numpy()  # (G, B, N)
        active = torch.stack(rec["active"]).cpu().numpy()  # (G, B)
        synops = torch.stack(rec["synops"]).cpu().numpy()  # (G, B)
        inputs = torch.stack(rec["inputs"]).sum(0).cpu().numpy()  # (B,) input events delivered
    b = inp.batch_size
    mem = torch.stack(rec["membranes"], 1).cpu().numpy() if rec["membranes"] else None
    steps_run = steps_run.cpu().numpy()
    dropped = rec["dropped"].cpu().numpy()
    out = []
    for s in range(b):
        if rec["fired"]:
            gi, n = np.nonzero(fired[:, s, :])
            trace = np.column_stack((tg[gi], n)).astype(np.int64)
            rows = np.flatnonzero(active[:, s])
            log = np.column_stack((tg[rows], synops[rows, s])).astype(np.int64)
        else:
            trace = np.zeros((0, 3), np.int64)
            log = np.zeros((0, 3), np.int64)
        counts = np.bincount(trace[trace[:, 2] >= tb.H, 2] - tb.H, minlength=tb.sizes[-1])
        k = int(steps_run[s])
        out.append(
            SampleRecord(
                sample_id=int(inp.sample_ids[s]),
                trace=trace.reshape(-1, 3),
                group_log=log.reshape(-1, 3),
                output_counts=counts.astype(np.int64),
                membranes=mem[s, :k] if mem is not None else np.zeros((k, tb.N)),
                steps=k,
                dropped=int(dropped[s]),
                input_events=int(inputs[s]) if rec["fired"] else 0,
            )
        )
    return out


_NUMBA_PICKS = None
USE_NUMBA = True  # random picks in a compiled loop on CPU tensors (same rule as the torch loop)


def _numba_picks():
    """The compiled random-pick kernel (built on first use; numba is imported lazily)."""
    global _NUMBA_PICKS
    if _NUMBA_PICKS is None:
        import numba

        from unlayered.sim import rng as sim_rng

        xs = numba.njit(cache=True)(sim_rng.xorshift32)
        pick = numba.njit(cache=True)(sim_rng.pick_index)

        @numba.njit(cache=True)
        def picks(plist, pcount, state, k, sel, dummy):  # pragma: no cover - compiled
            for b in range(plist.shape[0]):
                n, x = pcount[b], state[b]
                for j in range(k):
                    if n == 0:
                        sel[b, j] = dummy
                        continue
                    x = xs(x)
                    i = pick(x, n)
                    sel[b, j] = plist[b, i]
                    plist[b, i] = plist[b, n - 1]
                    n -= 1
                pcount[b], state[b] = n, x

        _NUMBA_PICKS = picks
    return _NUMBA_PICKS


def random_picks(
    plist: torch.Tensor, pcount: torch.Tensor, state: torch.Tensor, k: int, dummy: int
) -> torch.Tensor:
    """Semantics 6.3, ``k`` picks per sample (fewer where the list runs out), in place.

    Returns the ``(B, k)`` picked columns, ``dummy`` where a sample had nothing left.
    """
    B = plist.shape[0]
    if USE_NUMBA and plist.device.type == "cpu":
        sel = torch.empty((B, k), dtype=torch.int64)
        _numba_picks()(plist.numpy(), pcount.numpy(), state.numpy(), k, sel.numpy(), dummy)
        return sel
    sel = torch.full((B, k), dummy, dtype=torch.int64, device=plist.device)
    for j in range(k):
        act = pcount > 0
        state.copy_(torch.where(act, xorshift32(state), state))
        idx = (((state >> 16) * pcount) >> 16)[:, None]
        sel[:, j] = torch.where(act, plist.gather(1, idx)[:, 0], dummy)
        plist.scatter_(1, idx, plist.gather(1, (pcount - 1).clamp_(min=0)[:, None]))
        pcount.sub_(act.long())
    return sel


@dataclass
class _Setup:
    """Everything a run needs besides the weights (constants per neuron, tables, inputs)."""

    tb: _Tables
    cfg: ExecConfig
    inp: InputBatch
    integer: bool
    dtype: torch.dtype
    thr: torch.Tensor
    factor: torch.Tensor
    sub_mask: torch.Tensor
    thr_sub: torch.Tensor
    spike_fn: SpikeFn | None
    record: bool
    dropout: float = (
        0.0  # refractory dropout (training only): hidden neurons refractory at step start
    )
    generator: torch.Generator | None = None
    vmin: int = 0
    vmax: int = 0


@dataclass
class _Forward:
    counts: torch.Tensor
    state: SimState
    records: list[SampleRecord] | None
    tape: list | None  # per group: (sel or None, notref, e, u, fired, x or None)
    steps: list | None  # per step that ran: (t, alive, first tape entry, end)


def _simulate(su: _Setup, table: torch.Tensor, w0: torch.Tensor, mode: str) -> _Forward:
    """The forward run. ``mode``: ``"autograd"`` (float, differentiable through torch ops),
    ``"tape"`` (no gradient, keep what the hand-written backward needs), ``"plain"``."""
    tb, cfg, inp = su.tb, su.cfg, su.inp
    integer, dtype, device = su.integer, su.dtype, table.device
    B, T = inp.batch_size, inp.num_steps_max
    N, H, P, nc0, n_in = tb.N, tb.H, tb.P, tb.nc0, tb.n_in
    n0, n_out = tb.sizes[0], tb.sizes[-1]
    name, F_ = cfg.scheduler, cfg.group_size
    keyed, top = name != "random", cfg.momentum_buckets - 1
    thr, thr_sub, sub_mask = su.thr, su.thr_sub, su.sub_mask
    thr_h = thr[:H]
    autograd = mode == "autograd"
    if integer and cfg.prioritized_input:  # input rows for the saturating input group
        in_table = F.pad(w0.t(), (0, N - n0, 0, 1))

    v = torch.zeros((B, N), dtype=dtype, device=device)
    notref = torch.ones((B, N), dtype=torch.bool, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    keys = torch.full((B, P + 1), INF, dtype=torch.float64, device=device) if keyed else None
    plist = pcount = rng = None
    if not keyed:
        plist = torch.full((B, P + 1), P, dtype=torch.int64, device=device)
        pcount = torch.zeros(B, dtype=torch.int64, device=device)
        seeds = [sample_seed(cfg.seed, int(i)) for i in inp.sample_ids.tolist()]
        rng = torch.tensor(seeds, dtype=torch.int64, device=device)
    sv0 = None
    if autograd:  # spike values per pending column: 1 for inputs, the spike tensor for neurons
        sv0 = torch.zeros((B, P + 1), dtype=dtype, device=device)
        sv0[:, :nc0] = 1
    dropped = torch.zeros(B, dtype=torch.int64, device=device)
    steps_run = torch.zeros(B, dtype=torch.int64, device=device)
    zeros_out = torch.zeros((B, n_out), dtype=dtype, device=device)
    counts = []
    tape = [] if mode == "tape" else None
    steps = [] if mode == "tape" else None
    rec: dict[str, Any] = {
        "tg": [], "fired": [], "active": [], "synops": [], "inputs": [], "membranes": []
    }  # fmt: skip

    for t in range(T):
        alive = (inp.num_steps > t) & ~done
        if not bool(alive.any()):  # every sample has finished: nothing more can happen
            counts.append(zeros_out)
            if su.record:
                rec["membranes"].append(v.detach().clone())
            continue
        steps_run += alive
        # 5.1 leak, refractory flags clear
        v = torch.where(alive[:, None], leak(v, su.factor, integer, cfg.leak_shift), v)
        notref = torch.ones((B, N), dtype=torch.bool, device=device)
        if su.dropout > 0:  # a random subset of hidden neurons sits this step out
            keep = torch.rand((B, H), generator=su.generator, device=device) >= su.dropout
            notref[:, :H] = keep
        sv = sv0
        out_t = zeros_out
        order = torch.where(alive[:, None], inp.order[:, t], -1)  # (B, E)
        if steps is not None:
            steps.append([t, alive, len(tape), None])
        # 5.2 input
        input_group = False
        if cfg.prioritized_input:
            has_in = (order >= 0).any(1)
            input_group = bool(has_in.any())
        elif order.shape[1]:
            ok = order >= 0
            col = torch.where(ok, order, P)
            if keyed:
                if name == "sync":
                    k_in = order.to(torch.float64)
                else:
                    k_in = torch.arange(order.shape[1], device=device, dtype=torch.float64)
                    k_in = (k_in + (INPUT_FIRST if name == "momentum_exact" else 0)).expand_as(
                        order
                    )
                keys.scatter_(1, col, k_in)
                keys[:, P] = INF
            else:
                plist[:, : order.shape[1]] = col
                pcount.copy_(ok.sum(1))

        # 5.3-5.5 groups until nothing is pending, the cap, or a decision
        g = 0
        while True:
            sel = x = None
            if g == 0 and input_group:  # the prioritized input group
                active = has_in
                touched = tb.layer0 & has_in[:, None]
                if integer:
                    u = deliver_saturating(
                        v, in_table[torch.where(order >= 0, order, n_in)], notref, su.vmin, su.vmax
                    )
                else:
                    x = inp.spikes[:, t].to(dtype) * alive[:, None]
                    u = v + F.pad(F.linear(x, w0), (0, N - n0)) * notref
                n_inputs_in = (order >= 0).sum(1)
                synops = n_inputs_in * n0
            else:
                npend = (keys < INF).sum(1) if keyed else pcount
                k_max = int(npend.max())
                if k_max == 0:
                    break
                if cfg.max_groups_per_step and g >= cfg.max_groups_per_step:
                    dropped += npend
                    if keyed:
                        keys.fill_(INF)
                    else:
                        pcount.zero_()
                    break
                k = k_max if F_ == 0 else min(F_, k_max)
                if keyed:
                    val, sel = keys.topk(k, dim=1, largest=False, sorted=True)
                    valid = val < INF
                    if name == "sync":  # never mix layers: cut where the layer changes
                        lay = tb.col_layer[sel]
                        valid &= lay == lay[:, :1]
                    sel = torch.where(valid, sel, P)
                    keys.scatter_(1, sel, INF)
                else:
                    sel = random_picks(plist, pcount, rng, k, P)
                active = sel[:, 0] < P
                touched = F.embedding_bag(sel, tb.touch, mode="sum") > 0
                if integer:
                    u = deliver_saturating(v, table[sel], notref, su.vmin, su.vmax)
                elif autograd:
                    c = sv.gather(1, sel)
                    u = v + F.embedding_bag(sel, table, per_sample_weights=c, mode="sum") * notref
                else:
                    u = v + F.embedding_bag(sel, table, mode="sum") * notref
                if su.record:
                    synops = tb.col_fanout[sel].sum(1)
                    n_inputs_in = (sel < nc0).sum(1)
            # 5.4 evaluate
            fn = su.spike_fn if autograd else None
            spike, fired, v, e = evaluate(u, touched, notref, thr, sub_mask, thr_sub, fn)
            if tape is not None:
                tape.append((sel, notref, e, u, fired, x))
            notref = notref & ~fired
            out_t = out_t + spike[:, H:]
            if su.record:
                rec["tg"].append((t, g))
                rec["fired"].append(fired.clone())
                rec["active"].append(active.clone())
                rec["synops"].append(synops.clone())
                rec["inputs"].append(n_inputs_in)
            # hidden spikes enter the pending set in evaluation order
            if H:
                fired_h = fired[:, :H]
                if autograd:
                    sv = sv + F.pad(spike[:, :H], (nc0, P + 1 - nc0 - H))
                if not keyed:
                    pos = torch.where(fired_h, pcount[:, None] + fired_h.cumsum(1) - 1, P)
                    plist.scatter_(1, pos, tb.hidden_cols.expand(B, H))
                    pcount += fired_h.sum(1)
                else:
                    base = (g + 1) * tb.S
                    if name == "sync":
                        new = tb.sync_key
                    elif name == "fifo":
                        new = tb.fifo_key + base
                    else:
                        o = (u.detach()[:, :H] - thr_h).to(torch.float64)
                        if name == "momentum_exact":
                            new = -o
                        else:  # the integer overshoot, or the float one scaled, rounded up
                            if not integer:
                                o = torch.ceil(o * cfg.momentum_scale)
                            bucket = ((o - 1) * (1.0 / (1 << cfg.momentum_shift))).floor_()
                            bucket = bucket.clamp_(max=top)
                            new = (
                                tb.fifo_key + (base + top * BUCKET_STRIDE) - bucket * BUCKET_STRIDE
                            )
                    keys[:, nc0 : nc0 + H] = torch.where(fired_h, new, keys[:, nc0 : nc0 + H])
            # 7: first_to_threshold ends a sample at its first output spike
            if cfg.decision == "first_to_threshold":
                stop = fired[:, H:].any(1)
                if bool(stop.any()):
                    done = done | stop
                    if keyed:
                        keys.masked_fill_(stop[:, None], INF)
                    else:
                        pcount.masked_fill_(stop, 0)
            g += 1
        counts.append(out_t.to(dtype))
        if steps is not None:
            steps[-1][3] = len(tape)
        if su.record:
            rec["membranes"].append(v.detach().clone())

    state = SimState(
        v=v, notref=notref, keys=keys, plist=plist, pcount=pcount, rng=rng, sv=None, done=done
    )
    out = torch.stack(counts, 1) if counts else torch.zeros((B, 0, n_out), dtype=dtype)
    records = None
    if su.record:
        rec["dropped"] = dropped
        records = _record_samples(rec, inp, steps_run, tb)
    return _Forward(counts=out, state=state, records=records, tape=tape, steps=steps)


def _backward(
    su: _Setup, table: torch.Tensor, fwd: _Forward, grad_counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The hand-written backward pass of a float run (reverse of :func:`_simulate`).

    Adjoints: ``lam_v`` of the membranes, ``lam_s`` of each pending column's spike value in
    the current step (its deliveries come later in the step, so they are reversed first). With
    ``v = where(fired, u * sub - thr * sub, u)`` (reset detached), ``spike = H(u - thr) * e`` and
    ``u = v_prev + notref * sum_f c_f table[sel_f]`` (``c_f = 1``).
    """
    tb = su.tb
    B, N, P, nc0, H, n0 = su.inp.batch_size, tb.N, tb.P, tb.nc0, tb.H, tb.sizes[0]
    deriv = su.spike_fn.derivative
    grad_counts = grad_counts.to(table.dtype)
    d_table = torch.zeros_like(table)
    lam_v = table.new_zeros((B, N))
    lam_in, x_in = [], []
    small_table = P + 1 <= 2 * N  # then a full product beats gathering the selected rows
    table_t = table.t().contiguous()
    for t, alive, start, end in reversed(fwd.steps):
        lam_s = table.new_zeros((B, P + 1))
        lam_s[:, nc0 + H : nc0 + N] = grad_counts[:, t]
        d_spike = lam_s[:, nc0 : nc0 + N]  # a view: neuron n's spike value
        for sel, notref, e, u, fired, x in reversed(fwd.tape[start:end]):
            lam_u = torch.where(fired, lam_v * su.sub_mask, lam_v)
            lam_u = lam_u + deriv(u - su.thr) * e * d_spike
            lam_v = lam_u
            lam_a = lam_u * notref
            if sel is None:
                lam_in.append(lam_a[:, :n0])
                x_in.append(x)
                continue
            # each column occurs at most once per sample and group (the dummy aside): the
            # group's one-hot matrix turns the scattered row updates into one product
            onehot = torch.zeros_like(lam_s).scatter_(1, sel, 1.0)
            d_table.addmm_(onehot.t(), lam_a)
            if small_table:
                lam_c = (lam_a @ table_t).gather(1, sel)
            else:
                lam_c = torch.bmm(table[sel], lam_a[:, :, None])[..., 0]
            lam_s.scatter_add_(1, sel, lam_c)
        lam_v = torch.where(alive[:, None], lam_v * su.factor, lam_v)
    d_w0 = None
    if lam_in:
        d_w0 = torch.cat(lam_in).t() @ torch.cat(x_in)
    return d_table, d_w0


class _ManualBackward(torch.autograd.Function):
    """A float run whose backward is :func:`_backward` instead of torch's autograd graph."""

    @staticmethod
    def forward(ctx, table, w0, holder):
        fwd = _simulate(holder["setup"], table, w0, "tape")
        holder["forward"] = fwd
        ctx.holder = holder
        ctx.save_for_backward(table, w0)
        return fwd.counts

    @staticmethod
    def backward(ctx, grad_counts):
        table, w0 = ctx.saved_tensors
        holder = ctx.holder
        d_table, d_w0 = _backward(holder["setup"], table, holder["forward"], grad_counts)
        if d_w0 is None or not holder["setup"].cfg.prioritized_input:
            d_w0 = torch.zeros_like(w0) if ctx.needs_input_grad[1] else None
        holder.clear()  # the tape is not needed twice
        return d_table, d_w0, None


def run_scheduled(
    weights: list[torch.Tensor],
    thresholds: list[float],
    decay: list[float],
    resets: list[str],
    inp: InputBatch,
    cfg: ExecConfig,
    *,
    spike_fn: SpikeFn | None = None,
    record: bool = False,
    backward: str = "manual",
    refractory_dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> RunOutput:
    """Run a dense network over ``inp`` under ``cfg`` (see the module docstring).

    Parameters
    ----------
    weights
        ``weights[l]`` ``(size[l], fan_in[l])``, float (float mode; gradients flow to them) or
        integer-valued (integer mode).
    thresholds, decay, resets
        Per layer: threshold, decay (``beta`` in float mode, the integer ``leak`` in integer
        mode) and reset mode (``"zero"`` or ``"subtract"``).
    spike_fn
        Surrogate spike function for float mode (default ``atan()``); unused in integer mode.
    record
        Also return each sample's trace, group log and end-of-step membranes.
    backward
        Float mode with gradients: ``"manual"`` (default; a hand-written reverse pass over the
        recorded schedule, needs ``spike_fn.derivative``, as the factories of
        :mod:`.surrogate` provide) or ``"autograd"`` (torch records every group's operations;
        slower, works with any ``spike_fn``). Both compute the same gradient.
    refractory_dropout, generator
        Training regularizer (float mode only): at the start of every step each hidden neuron
        is made refractory with this probability (drawn from ``generator``), so it neither
        integrates nor fires in that step. The execution stays within the contract (a
        refractory neuron is a legal state); a deployed model never uses it.
    """
    if refractory_dropout and cfg.integer:
        raise ValueError("refractory_dropout is a float training regularizer")
    integer = cfg.integer
    sizes = tuple(int(w.shape[0]) for w in weights)
    n_in = int(weights[0].shape[1])
    if inp.n_inputs != n_in:
        raise ValueError(f"inputs have {inp.n_inputs} channels, the network {n_in}")
    device = weights[0].device
    tb = _tables(n_in, sizes, cfg.prioritized_input, device)
    layer_sizes = torch.tensor(sizes, device=device)
    if integer:
        dtype = torch.int64
        weights = [w.round().long() if w.is_floating_point() else w.long() for w in weights]
        spike_fn = None
    else:
        dtype = weights[0].dtype
        spike_fn = spike_fn or atan()

    def per_neuron(values):
        return torch.repeat_interleave(
            torch.tensor(values, dtype=dtype, device=device), layer_sizes
        )

    sub_mask = per_neuron([1 if r == "subtract" else 0 for r in resets])
    thr = per_neuron(thresholds)
    su = _Setup(
        tb=tb,
        cfg=cfg,
        inp=inp.to(device),
        integer=integer,
        dtype=dtype,
        thr=thr,
        factor=per_neuron(decay),
        sub_mask=sub_mask,
        thr_sub=thr * sub_mask,
        spike_fn=spike_fn,
        record=record,
        dropout=float(refractory_dropout),
        generator=generator,
        vmin=-(1 << (cfg.membrane_bits - 1)),
        vmax=(1 << (cfg.membrane_bits - 1)) - 1,
    )
    table = _fanout_table(weights, tb)  # (P + 1, N), differentiable in float mode
    wants_grad = not integer and torch.is_grad_enabled() and any(w.requires_grad for w in weights)
    if not wants_grad:
        with torch.no_grad():
            fwd = _simulate(su, table, weights[0], "plain")
        return RunOutput(counts=fwd.counts, state=fwd.state, records=fwd.records)
    if backward == "manual" and hasattr(spike_fn, "derivative"):
        holder = {"setup": su}
        counts = _ManualBackward.apply(table, weights[0], holder)
        fwd = holder["forward"]
        return RunOutput(counts=counts, state=fwd.state, records=fwd.records)
    if backward not in ("manual", "autograd"):
        raise ValueError(f"unknown backward {backward!r}; expected 'manual' or 'autograd'")
    fwd = _simulate(su, table, weights[0], "autograd")
    return RunOutput(counts=fwd.counts, state=fwd.state, records=fwd.records)


# ---------------------------------------------------------------------------------------------
# The module


def _per_layer(value, n: int, what: str) -> list:
    values = list(value) if isinstance(value, list | tuple) else [value] * n
    if len(values) != n:
        raise ValueError(f"{what}: {len(values)} values for {n} layers")
    return values


class ScheduledSNN(nn.Module):
    """A dense spiking network run under a scheduler (float training or integer deployed mode).

    Parameters
    ----------
    n_inputs, sizes
        Input channels and layer sizes (the last layer is the output layer).
    threshold, beta, reset
        Per layer (or one value for all): threshold, float decay ``beta``, and ``"zero"`` or
        ``"subtract"``.
    config
        The :class:`ExecConfig`; keyword arguments override its fields.
    spike_grad
        Surrogate spike function (default :func:`.surrogate.atan`).
    leak
        Integer mode: per-layer integer ``leak`` (default ``round(beta * 2^leak_shift)``).
    backward
        ``"manual"`` (default, fast) or ``"autograd"``: see :func:`run_scheduled`.
    refractory_dropout
        Training-only regularizer (float mode, ``module.training``): the probability that a
        hidden neuron is refractory for a whole step (see :func:`run_scheduled`).

    ``forward(inputs)`` returns ``(counts, state)``: per-step output spike counts ``(B, T,
    n_out)`` and the final :class:`SimState`. ``inputs`` is an :class:`InputBatch` or dense
    ``(B, T, n_in)`` spikes (arrival order ascending by channel).
    """

    def __init__(
        self,
        n_inputs: int,
        sizes: list[int] | tuple[int, ...],
        *,
        threshold: float | list[float] = 1.0,
        beta: float | list[float] = 0.9,
        reset: str | list[str] = "zero",
        config: ExecConfig | None = None,
        spike_grad: SpikeFn | None = None,
        leak: list[int] | None = None,
        backward: str = "manual",
        refractory_dropout: float = 0.0,
        **config_fields: Any,
    ):
        super().__init__()
        n = len(sizes)
        self.n_inputs = int(n_inputs)
        self.sizes = tuple(int(s) for s in sizes)
        self.fc = nn.ModuleList(
            nn.Linear(fi, fo, bias=False)
            for fi, fo in zip((n_inputs, *self.sizes[:-1]), self.sizes, strict=True)
        )
        self.thresholds = [float(x) for x in _per_layer(threshold, n, "threshold")]
        self.betas = [float(x) for x in _per_layer(beta, n, "beta")]
        self.resets = _per_layer(reset, n, "reset")
        for r in self.resets:
            if r not in ("zero", "subtract"):
                raise ValueError(f"unknown reset {r!r}; expected 'zero' or 'subtract'")
        self.config = replace(config or ExecConfig(), **config_fields)
        self.spike_grad = spike_grad or atan()
        self.leaks = leak
        self.backward = backward
        self.refractory_dropout = float(refractory_dropout)
        self.generator: torch.Generator | None = None  # for refractory dropout; None: global

    @classmethod
    def from_model(
        cls,
        model: Model,
        *,
        spike_grad: SpikeFn | None = None,
        backward: str = "manual",
        **config_fields: Any,
    ) -> ScheduledSNN:
        """The integer-mode network of a deployed :class:`unlayered.sim.Model` (bit-exact).

        Keyword arguments override :class:`ExecConfig` fields (``integer=False`` gives the
        float network with the model's values: ``beta = leak / 2^leak_shift``)."""
        s = model.scheduler
        cfg = ExecConfig(
            scheduler=s.name,
            group_size=s.group_size,
            prioritized_input=s.prioritized_input,
            seed=s.seed,
            momentum_buckets=s.momentum_buckets,
            momentum_shift=s.momentum_shift,
            max_groups_per_step=s.max_groups_per_step,
            decision=model.decision,
            integer=True,
            membrane_bits=model.membrane_bits,
            leak_shift=model.leak_shift,
        )
        net = cls(
            model.n_inputs,
            model.sizes,
            threshold=[x.threshold for x in model.layers],
            beta=[x.leak / (1 << model.leak_shift) for x in model.layers],
            reset=[x.reset for x in model.layers],
            leak=[x.leak for x in model.layers],
            config=replace(cfg, **config_fields),
            spike_grad=spike_grad,
            backward=backward,
        )
        with torch.no_grad():
            for fc, w in zip(net.fc, model.weights, strict=True):
                fc.weight.copy_(torch.as_tensor(np.asarray(w), dtype=torch.float32))
        return net

    def to_model(
        self, *, weight_bits: int = 8, scheduler: SchedulerSpec | None = None, **fields: Any
    ) -> Model:
        """The integer :class:`Model` of an integer-mode network (weights rounded)."""
        cfg = self.config
        leaks = self.leaks or [round(b * (1 << cfg.leak_shift)) for b in self.betas]
        s = scheduler or SchedulerSpec(
            name=cfg.scheduler,
            group_size=cfg.group_size,
            prioritized_input=cfg.prioritized_input,
            seed=cfg.seed,
            momentum_buckets=cfg.momentum_buckets,
            momentum_shift=cfg.momentum_shift,
            max_groups_per_step=cfg.max_groups_per_step,
        )
        return Model(
            n_inputs=self.n_inputs,
            layers=tuple(
                LayerSpec(size=n, threshold=round(th), leak=lk, reset=r)
                for n, th, lk, r in zip(
                    self.sizes, self.thresholds, leaks, self.resets, strict=True
                )
            ),
            weights=tuple(fc.weight.detach().round().long().cpu().numpy() for fc in self.fc),
            weight_bits=weight_bits,
            membrane_bits=cfg.membrane_bits,
            leak_shift=cfg.leak_shift,
            scheduler=s,
            decision=cfg.decision,
            **fields,
        )

    def _inputs(self, inputs: InputBatch | torch.Tensor) -> InputBatch:
        return inputs if isinstance(inputs, InputBatch) else from_dense(inputs)

    def run(self, inputs: InputBatch | torch.Tensor, *, record: bool = False) -> RunOutput:
        cfg = self.config
        if cfg.integer:
            decay = self.leaks or [round(b * (1 << cfg.leak_shift)) for b in self.betas]
            thresholds = [round(x) for x in self.thresholds]
        else:
            decay, thresholds = self.betas, self.thresholds
        return run_scheduled(
            [fc.weight for fc in self.fc],
            thresholds,
            decay,
            self.resets,
            self._inputs(inputs),
            cfg,
            spike_fn=self.spike_grad,
            record=record,
            backward=self.backward,
            refractory_dropout=self.refractory_dropout
            if self.training and not cfg.integer
            else 0.0,
            generator=self.generator,
        )

    def forward(self, inputs: InputBatch | torch.Tensor) -> tuple[torch.Tensor, SimState]:
        out = self.run(inputs)
        return out.counts, out.state

    @torch.no_grad()
    def simulate(self, inputs: InputBatch | torch.Tensor) -> list[SampleRecord]:
        """Run without gradients and return every sample's record."""
        return self.run(inputs, record=True).records
