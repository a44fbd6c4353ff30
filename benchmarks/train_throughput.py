"""Training and inference throughput of the scheduled simulator, against snnTorch, on CPU.

The workload of ``/work/shared/ANCHORS.md`` (the paper's simulator, asynctorch, measured on the
same machine kind): a 2312-64-64-64-10 dense LIF network, no bias, threshold 0.3, reset to zero,
beta 0.9, refractory, prioritized input; binary input with each of 2312 channels active with
probability 0.02 per step, 30 steps, batch 64, ``torch.set_num_threads(2)``, Xavier-uniform
weights. Training = forward over the 30 steps, cross-entropy on per-step output counts,
backward, Adam step. Inference = the forward without gradients.

The scheduled network takes an ``InputBatch`` (dense spikes plus each step's arrival order);
it is built outside the timed step, as the trainer builds it once per dataset. Its cost
(``from_dense``, an argsort over every channel) is reported separately and folded into the
``with conversion`` figures.

Each workload runs in its own process (so its peak resident memory is its own), with warm-up
batches first, then ``--repeats`` timed batches; the median is reported. A layer-synchronous
snnTorch network of the same size is measured in the same run for comparison.

    python benchmarks/train_throughput.py                # all workloads, table + JSON
    python benchmarks/train_throughput.py --repeats 9 --json out/bench/train.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe

SIZES = (64, 64, 64, 10)
N_IN = 2312
T = 30
BATCH = 64
ACTIVITY = 0.02
THRESHOLD = 0.3
BETA = 0.9
WORKLOADS = (
    ("random", 16),
    ("momentum", 16),
    ("random", 128),
    ("momentum", 128),
    ("snntorch", 0),
)
PAPER = {  # ANCHORS.md, samples/s (median), same machine kind
    ("random", 16): {"inference": 373, "training": 181},
    ("random", 128): {"inference": 433, "training": None},
    ("momentum", 16): {"inference": 256, "training": 166},
    ("momentum", 128): {"inference": 302, "training": None},
    ("snntorch", 0): {"inference": 1801, "training": 874},
}


def _inputs(seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    spikes = (torch.rand((BATCH, T, N_IN), generator=g) < ACTIVITY).float()
    labels = torch.randint(0, SIZES[-1], (BATCH,), generator=g)
    return spikes, labels


def _scheduled(name: str, f: int):
    import torch

    from unlayered.sw.scheduled import ScheduledSNN

    torch.manual_seed(0)
    net = ScheduledSNN(
        N_IN, SIZES, threshold=THRESHOLD, beta=BETA, reset="zero", scheduler=name, group_size=f
    )
    for fc in net.fc:
        torch.nn.init.xavier_uniform_(fc.weight)

    def forward(batch):
        return net(batch)[0]  # (B, T, 10) per-step output counts

    return net, forward


def _snntorch():
    import snntorch as snn
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            fan_in = (N_IN, *SIZES[:-1])
            self.fc = nn.ModuleList(
                nn.Linear(a, b, bias=False) for a, b in zip(fan_in, SIZES, strict=True)
            )
            self.lif = nn.ModuleList(
                snn.Leaky(beta=BETA, threshold=THRESHOLD, reset_mechanism="zero") for _ in SIZES
            )
            for fc in self.fc:
                nn.init.xavier_uniform_(fc.weight)

        def forward(self, spikes):
            mems = [lif.reset_mem() for lif in self.lif]
            out = []
            for t in range(spikes.shape[1]):
                x = spikes[:, t]
                for i, (fc, lif) in enumerate(zip(self.fc, self.lif, strict=True)):
                    x, mems[i] = lif(fc(x), mems[i])
                out.append(x)
            return torch.stack(out, 1)

    net = Net()
    return net, net


def measure(name: str, f: int, repeats: int, warmup: int) -> dict:
    """One workload in this process: samples/s of inference and training, peak RSS."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    net, forward = _snntorch() if name == "snntorch" else _scheduled(name, f)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = [_inputs(i) for i in range(warmup + repeats)]
    conversion = []
    if name != "snntorch":  # the trainer converts a dataset once, outside the training step
        from unlayered.sw.events_torch import from_dense

        converted = []
        for spikes, labels in batches:
            start = time.perf_counter()
            converted.append((from_dense(spikes), labels))
            conversion.append(time.perf_counter() - start)
        batches = converted

    def train_step(spikes, labels):
        counts = forward(spikes)
        b, t, c = counts.shape
        loss = F.cross_entropy(counts.reshape(b * t, c), labels.repeat_interleave(t))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return counts

    def infer(spikes, labels):
        with torch.no_grad():
            return forward(spikes)

    out = {"workload": name, "group_size": f}
    for kind, step in (("inference", infer), ("training", train_step)):
        times, activity = [], []
        for i, (spikes, labels) in enumerate(batches):
            start = time.perf_counter()
            counts = step(spikes, labels)
            seconds = time.perf_counter() - start
            if i >= warmup:
                times.append(seconds)
            activity.append(float(counts.detach().sum()) / BATCH)
        med = statistics.median(times)
        out[kind] = {
            "samples_per_s": BATCH / med,
            "median_s_per_batch": med,
            "min_s": min(times),
            "max_s": max(times),
            "output_spikes_per_sample": statistics.mean(activity),
        }
    if conversion:
        conv = statistics.median(conversion[warmup:])
        out["input_conversion_s_per_batch"] = conv
        for kind in ("inference", "training"):
            med = out[kind]["median_s_per_batch"]
            out[kind]["samples_per_s_with_conversion"] = BATCH / (med + conv)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def activity_check() -> dict:
    """Spikes per sample of the scheduled network (random F=16), to compare with ANCHORS."""
    import torch

    from unlayered.sw.events_torch import from_dense

    torch.set_num_threads(2)
    net, _ = _scheduled("random", 16)
    spikes, _ = _inputs(0)
    records = net.simulate(from_dense(spikes[:8]))
    return {
        "input_spikes_per_sample": float(spikes.sum() / BATCH),
        "network_spikes_per_sample": sum(len(r.trace) for r in records) / len(records),
        "synops_per_sample": sum(int(r.group_log[:, 2].sum()) for r in records) / len(records),
    }


def machine() -> dict:
    import torch

    return describe(torch=torch.__version__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # child process: one workload
    parser.add_argument(
        "--workloads", nargs="+", help="subset, e.g. random:16 snntorch:0 (default: all)"
    )
    args = parser.parse_args()
    if args.only:
        name, f = args.only.split(":")
        print(json.dumps(measure(name, int(f), args.repeats, args.warmup)))
        return 0
    chosen = WORKLOADS
    if args.workloads:
        chosen = tuple((w.split(":")[0], int(w.split(":")[1])) for w in args.workloads)
    results = []
    for name, f in chosen:
        cmd = [sys.executable, __file__, "--only", f"{name}:{f}", "--repeats", str(args.repeats),
               "--warmup", str(args.warmup)]  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        r["paper"] = PAPER.get((name, f))
        results.append(r)
        train_s, infer_s = r["training"]["samples_per_s"], r["inference"]["samples_per_s"]
        print(f"{name} F={f}: {train_s:.0f} training, {infer_s:.0f} inference samples/s",
              file=sys.stderr)  # fmt: skip
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "threads": 2,
        "workload": {"sizes": [N_IN, *SIZES], "steps": T, "batch": BATCH, "activity": ACTIVITY},
        "activity": activity_check(),
        "results": results,
    }
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def format_table(results: list[dict]) -> str:
    head = "| workload | training samples/s | paper | ratio | inference samples/s | paper | ratio "
    head += "| training, with input conversion | peak RSS MB |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        p = r["paper"] or {}
        cells = [f"{r['workload']} F={r['group_size']}" if r["group_size"] else r["workload"]]
        for kind in ("training", "inference"):
            v = r[kind]["samples_per_s"]
            ref = p.get(kind)
            cells += [f"{v:.0f}", "-" if ref is None else str(ref),
                      "-" if ref is None else f"{v / ref:.2f}x"]  # fmt: skip
        with_conv = r["training"].get("samples_per_s_with_conversion")
        cells.append("-" if with_conv is None else f"{with_conv:.0f}")
        cells.append(f"{r['peak_rss_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
