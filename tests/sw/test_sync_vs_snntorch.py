"""``sync`` with unbounded groups in float mode is a time-stepped snnTorch network."""

from __future__ import annotations

import itertools

import pytest
import snntorch as snn
import torch
from torch import nn

from unlayered.sw.events_torch import from_dense
from unlayered.sw.scheduled import ScheduledSNN


def snntorch_run(fcs, betas, thresholds, x):
    """Spikes (B, T, N) and membranes (B, T, N) of a Linear + Leaky stack, step by step."""
    lifs = [
        snn.Leaky(beta=b, threshold=th, reset_mechanism="zero", reset_delay=False)
        for b, th in zip(betas, thresholds, strict=True)
    ]
    mems = [lif.reset_mem() for lif in lifs]
    spikes, membranes = [], []
    for t in range(x.shape[1]):
        cur, spk_t, mem_t = x[:, t], [], []
        for i, (fc, lif) in enumerate(zip(fcs, lifs, strict=True)):
            cur, mems[i] = lif(fc(cur), mems[i])
            cur = cur.to(x.dtype)  # snnTorch's spikes are float32
            spk_t.append(cur)
            mem_t.append(mems[i])
        spikes.append(torch.cat(spk_t, 1))
        membranes.append(torch.cat(mem_t, 1))
    return torch.stack(spikes, 1), torch.stack(membranes, 1)


@pytest.mark.parametrize("sizes", [(7,), (12, 5), (16, 12, 4), (10, 10, 8, 3)])
@pytest.mark.parametrize("beta", [0.5, 0.9, 1.0])
@pytest.mark.parametrize("prioritized", [True, False])
def test_sync_unbounded_equals_snntorch(sizes, beta, prioritized):
    torch.manual_seed(hash((sizes, beta, prioritized)) % 1000)
    n_in, batch, steps = 20, 6, 12
    thresholds = [0.8 + 0.1 * i for i in range(len(sizes))]
    net = ScheduledSNN(
        n_in, sizes, threshold=thresholds, beta=beta, reset="zero",
        scheduler="sync", group_size=0, prioritized_input=prioritized,
    ).double()  # fmt: skip
    with torch.no_grad():
        for fc in net.fc:
            fc.weight.uniform_(-0.6, 1.0).mul_(2.5 / fc.in_features**0.5)
    x = (torch.rand(batch, steps, n_in) < 0.3).double()
    fcs = []
    for fc in net.fc:
        ref = nn.Linear(fc.in_features, fc.out_features, bias=False).double()
        ref.weight.data.copy_(fc.weight.data)
        fcs.append(ref)
    want_spikes, want_mem = snntorch_run(fcs, [beta] * len(sizes), thresholds, x)

    inp = from_dense(x)
    out = net.run(inp, record=True)
    got = torch.zeros_like(want_spikes)
    for b, r in enumerate(out.records):
        got[b, r.trace[:, 0], r.trace[:, 2]] = 1
        # one group per pending layer: the trace's group index is the layer
        layer = torch.searchsorted(
            torch.tensor(net.sizes).cumsum(0), torch.tensor(r.trace[:, 2]), right=True
        )
        assert torch.equal(torch.as_tensor(r.trace[:, 1]), layer)
        # snnTorch keeps beta as a float32 tensor: membranes agree to float32 precision
        torch.testing.assert_close(torch.as_tensor(r.membranes), want_mem[b], rtol=1e-5, atol=1e-6)
    assert torch.equal(got, want_spikes)
    assert torch.equal(out.counts, want_spikes[:, :, -sizes[-1] :])
    # non-vacuous: every layer spikes somewhere, and not everywhere
    starts = [0, *torch.tensor(sizes).cumsum(0).tolist()]
    for lo, hi in itertools.pairwise(starts):
        assert 0 < want_spikes[..., lo:hi].mean() < 1
