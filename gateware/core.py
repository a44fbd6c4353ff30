"""The neuron core: one asynchronous SNN, the execution contract in gateware.

See ``docs/gateware.md`` for the architecture, the streams and the cycle behaviour.
"""

from __future__ import annotations

from amaranth.hdl import (
    Array,
    Cat,
    ClockSignal,
    Const,
    Instance,
    Module,
    Mux,
    Signal,
    signed,
)
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from unlayered.sim import Model, UnlayeredError

from .fit import WEIGHT_RAMS, spram_refusal
from .layout import (
    CoreLayout,
    fire_count_stored,
    fired_queue_shape,
    group_overlap,
    weight_slices,
)
from .memory import COLLISION_FREE, BlockFIFO
from .onehot import OneHotFSM
from .pending import make_pending
from .streams import InputKind, InputRecord, SpikeRecord, SummaryRecord, weight_write_layout

__all__ = ["SPIKES", "WEIGHT_RAMS", "NeuronCore"]

SPIKES = ("all", "outputs")


class NeuronCore(wiring.Component):
    """An event-driven neuron core for ``model`` with ``lanes`` lanes.

    Parameters
    ----------
    model
        The deployed model: sizes, widths, per-layer parameters, scheduler, decision rule are
        elaborated as constants; its weights are the initial contents of the weight memories.
    lanes
        ``L``: membrane banks and weight banks, one synaptic operation per lane per cycle.
    spikes
        ``"all"``: every spike goes out on ``spikes``; ``"outputs"``: only the output layer's
        (the counters still count every spike).
    weight_ram
        ``"bram"``: the weight banks are block RAMs initialized with the model's weights.
        ``"spram"``: each bank is one iCE40 ``SB_SPRAM256KA`` (at most 4 lanes, 16384 words,
        16 bits), which the bitstream cannot initialize: the host writes the weights through
        ``weights`` after configuration. Elaborated without a platform (the Amaranth simulator,
        Verilog for simulation), the SPRAM is modelled by a memory that starts at zero.

    Members
    -------
    events : In(stream.Signature(InputRecord))
        Input records: ``START`` (random state), ``EVENT`` (channel), ``END_STEP``,
        ``END_SAMPLE``. Backpressured.
    weights : In(stream.Signature(weight_write_layout(...)))
        Weight memory writes ``(bank, addr, data)``; ready only while the core is idle.
    spikes : Out(stream.Signature(SpikeRecord))
        Every spike ``(step, group, neuron)`` in trace order (output-layer spikes only with
        ``spikes="outputs"``).
    summary : Out(stream.Signature(SummaryRecord))
        One record per sample, after its last spike.
    counters : Out(SummaryRecord)
        The counters themselves: after the summary record, the last sample's until the next
        ``START`` (a host link reads them there instead of keeping a copy).
    membranes : Out(stream.Signature(signed(membrane_bits)))
        While ``debug`` is set: the N membranes, ascending, at the end of every step.
    debug : In(1)
        Enable the membrane read-out.
    idle : Out(1)
        No sample in progress.
    """

    def __init__(
        self, model: Model, lanes: int = 1, *, spikes: str = "all", weight_ram: str = "bram"
    ):
        model.validate()
        refusal = None
        if spikes not in SPIKES:
            refusal = f"spikes must be one of {SPIKES}, got {spikes!r}"
        elif weight_ram not in WEIGHT_RAMS:
            refusal = f"weight_ram must be one of {WEIGHT_RAMS}, got {weight_ram!r}"
        elif weight_ram == "spram" and (why := spram_refusal(model, lanes)):
            refusal = f'weight_ram="spram": {why}'
        if refusal:
            self._MustUse__silence = True  # refused: no "created but never used" warning
            raise UnlayeredError(refusal)
        self._model = model
        self._lanes = lanes
        self._spikes = spikes
        self._weight_ram = weight_ram
        self._layout = CoreLayout.from_model(model, lanes)
        lay = self._layout
        super().__init__(
            {
                "events": In(stream.Signature(InputRecord)),
                "weights": In(
                    stream.Signature(
                        weight_write_layout(lanes, lay.weight_depth, model.weight_bits)
                    )
                ),
                "spikes": Out(stream.Signature(SpikeRecord)),
                "summary": Out(stream.Signature(SummaryRecord)),
                "counters": Out(SummaryRecord),
                "membranes": Out(stream.Signature(signed(model.membrane_bits))),
                "debug": In(1),
                "idle": Out(1),
            }
        )

    @property
    def layout(self) -> CoreLayout:
        return self._layout

    def elaborate(self, platform):
        m = Module()
        model, lay, nbanks = self._model, self._layout, self._lanes
        sched = model.scheduler
        mb, wbits = model.membrane_bits, model.weight_bits
        nl = len(model.layers)
        n_in, ns = lay.n_inputs, lay.n_sources
        vmin, vmax = model.vmin, model.vmax
        depth = max(lay.bank_depth, 1)
        n_buckets = sched.momentum_buckets
        top_bucket = n_buckets - 1

        # ---- memories -------------------------------------------------------------------
        # Membrane bank b: every write goes through a request register (``wq_*``), so no
        # adder or multiplexer feeds the block RAM's write port. A read of the address written
        # in the same cycle is never used (the delivery pipeline forwards the words it has in
        # flight instead), so the banks are collision-free.
        v_rp = []
        wq_en = [Signal(name=f"wq_en{b}") for b in range(nbanks)]
        wq_addr = [Signal(range(max(depth, 2)), name=f"wq_addr{b}") for b in range(nbanks)]
        wq_data = [Signal(mb + 1, name=f"wq_data{b}") for b in range(nbanks)]
        for b in range(nbanks):
            vm = Memory(shape=mb + 1, depth=max(depth, 2), init=[], attrs=COLLISION_FREE)
            m.submodules[f"membrane{b}"] = vm
            wp = vm.write_port()
            m.d.comb += [wp.addr.eq(wq_addr[b]), wp.data.eq(wq_data[b]), wp.en.eq(wq_en[b])]
            m.d.sync += wq_en[b].eq(0)  # a write request lasts one cycle unless renewed
            v_rp.append(vm.read_port())
        v_rdata = Array(rp.data for rp in v_rp)

        def request_write(b, addr, data):
            """Write ``data`` to membrane bank ``b`` at ``addr`` in the next cycle."""
            m.d.sync += [wq_en[b].eq(1), wq_addr[b].eq(addr), wq_data[b].eq(data)]

        # Weight bank b: the delivery pipeline reads ``w_raddr[b]`` (the word arrives in
        # ``w_rdata[b]`` after the clock edge); the weights port writes ``wr`` while the core is
        # idle (``w_we[b]``).
        wr = self.weights.payload
        wdepth = max(lay.weight_depth, 2)
        abits = (wdepth - 1).bit_length()  # a weight word's address
        w_raddr = [Signal(range(wdepth), name=f"w_raddr{b}") for b in range(nbanks)]
        w_rdata = [Signal(signed(wbits), name=f"w_rdata{b}") for b in range(nbanks)]
        w_we = [Signal(name=f"w_we{b}") for b in range(nbanks)]
        image = lay.weight_image(model)
        slices = weight_slices(wdepth, wbits)
        for b in range(nbanks):
            if self._weight_ram == "bram" and len(slices) > 1:
                # a deep bank: one memory per bit slice (``weight_slices``), low bits first
                parts, lo = [], 0
                for i, width in enumerate(slices):
                    init = ((image[b] >> lo) & ((1 << width) - 1)).tolist()
                    wm = Memory(shape=width, depth=wdepth, init=init, attrs=COLLISION_FREE)
                    m.submodules[f"weight{b}_{i}"] = wm
                    wp, rp = wm.write_port(), wm.read_port()
                    m.d.comb += [
                        wp.addr.eq(wr.addr),
                        wp.data.eq(wr.data[lo : lo + width]),
                        wp.en.eq(w_we[b]),
                        rp.addr.eq(w_raddr[b]),
                    ]
                    parts.append(rp.data)
                    lo += width
                m.d.comb += w_rdata[b].eq(Cat(*parts))
                continue
            if self._weight_ram == "bram":
                wm = Memory(
                    shape=signed(wbits), depth=wdepth, init=image[b].tolist(), attrs=COLLISION_FREE
                )
                m.submodules[f"weight{b}"] = wm
                wp, rp = wm.write_port(), wm.read_port()
                m.d.comb += [
                    wp.addr.eq(wr.addr),
                    wp.data.eq(wr.data),
                    wp.en.eq(w_we[b]),
                    rp.addr.eq(w_raddr[b]),
                    w_rdata[b].eq(rp.data),
                ]
                continue
            # SPRAM: one port, the write address while writing, else the read address; the
            # 16-bit word holds the weight sign-extended.
            addr, wdata, dataout = Signal(14), Signal(16), Signal(16)
            m.d.comb += [
                addr.eq(Mux(w_we[b], wr.addr, w_raddr[b])),
                wdata.eq(wr.data),
                w_rdata[b].eq(dataout[:wbits].as_signed()),
            ]
            if platform is None:  # what the board holds at power-up: zeros, not the weights
                sm = Memory(shape=16, depth=wdepth, init=[])
                m.submodules[f"weight{b}"] = sm
                wp, rp = sm.write_port(), sm.read_port()
                m.d.comb += [
                    wp.addr.eq(addr),
                    wp.data.eq(wdata),
                    wp.en.eq(w_we[b]),
                    rp.addr.eq(addr),
                    rp.en.eq(~w_we[b]),  # DATAOUT holds during a write
                    dataout.eq(rp.data),
                ]
            else:
                m.submodules[f"weight{b}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr,
                    i_DATAIN=wdata,
                    i_MASKWREN=Const(0b1111, 4),
                    i_WREN=w_we[b],
                    i_CHIPSELECT=Const(1, 1),
                    i_CLOCK=ClockSignal(),
                    i_STANDBY=Const(0, 1),
                    i_SLEEP=Const(0, 1),
                    i_POWEROFF=Const(1, 1),  # active low
                    o_DATAOUT=dataout,
                )

        def vpart(word):
            return word[:mb].as_signed()

        def rpart(word):
            return word[mb]

        # ---- pending structure ----------------------------------------------------------
        m.submodules.pending = pend_mod = make_pending(sched.name, ns, nl, n_buckets)

        class _Push:  # what the core pushes this cycle; registered before the pending structure
            pass

        pend = _Push()
        for name in ("head", "count", "lowest", "last", "busy", "clear"):
            setattr(pend, name, getattr(pend_mod, name))
        pend.push_valid = Signal(name="push_c_valid")
        pend.push_source = Signal(16, name="push_c_source")
        pend.push_layer = Signal.like(pend_mod.push_layer, name="push_c_layer")
        pend.push_bucket = Signal.like(pend_mod.push_bucket, name="push_c_bucket")
        # A push reaches the pending structure one cycle after the core decides it: the decision
        # (a membrane read, a threshold compare, a spike handshake) and the structure's write
        # path are then in different cycles. Every consumer of ``count``/``head`` waits at least
        # two cycles after the last push of a group (see docs/gateware.md).
        m.d.sync += [
            pend_mod.push_valid.eq(pend.push_valid),
            pend_mod.push_source.eq(pend.push_source),
            pend_mod.push_layer.eq(pend.push_layer),
            pend_mod.push_bucket.eq(pend.push_bucket),
        ]
        # Likewise the generator's seed (``random``): loaded in the cycle after START (IDLE),
        # one cycle before the first push can arrive.
        m.d.sync += pend_mod.load.eq(0)

        # ---- constants per layer --------------------------------------------------------
        sizes = Array(Const(s, 17) for s in lay.sizes)
        cycles = Array(Const(k, 17) for k in lay.cycles)
        # source code c: 0 for inputs, i + 1 for neurons of layer i; source start of each code
        src_start = [0] + [n_in + s for s in lay.starts]

        def row_address(source, layer):
            """The first word of ``source``'s row into ``layer``: row_start[c] + (s -
            src_start[c]) * K[c] = s * K[c] + (row_start[c] - src_start[c] * K[c]), modulo the
            address width. One such sum per layer, with K[c] a constant (shifts and adds, no
            multiplier), selected by the layer."""
            mod = 1 << abits
            sums = []
            for r, s0, k in zip(lay.row_start, src_start[:nl], lay.cycles, strict=True):
                terms = [source << i for i in range(k.bit_length()) if k >> i & 1]
                sums.append((sum(terms) + (r - s0 * k) % mod)[:abits])
            return Array(sums)[layer]

        # ---- counters -------------------------------------------------------------------
        step = Signal(32)
        prev_step = Signal(32)  # step - 1: the step of spikes still drained after a step's end
        gbits, nbits = lay.group_bits, lay.neuron_bits
        group = Signal(gbits)  # the group's index in the step
        c_spikes, c_synops, c_groups = Signal(32), Signal(32), Signal(32)
        c_dropped, c_inputs, c_cycles = Signal(32), Signal(32), Signal(32)
        touched = Signal(nl)
        # synapses of the row loaded in the previous cycle, added to c_synops one cycle late so
        # that the pending head (a block-RAM output) does not feed the 32-bit adder
        syn_inc = Signal(17)
        input_inc = Signal()  # likewise: the row loaded in the previous cycle was an input's
        m.d.sync += [
            syn_inc.eq(0),
            c_synops.eq(c_synops + syn_inc),
            input_inc.eq(0),
            c_inputs.eq(c_inputs + input_inc),
        ]
        # A group's end counts it one cycle later (``group_inc``), so that the group
        # controller's decisions do not reach the 32-bit adders; a row loaded in that cycle
        # (the next group's first pick) takes ``group + group_inc``, the group's number.
        group_inc = Signal()
        m.d.sync += [
            group_inc.eq(0),
            group.eq(group + group_inc),
            c_groups.eq(c_groups + group_inc),
        ]
        first_step = Signal()
        # A step's end advances the step counter one cycle later (``step_inc``), so that the
        # end-of-step decision does not reach the 32-bit adder; the next step's first row takes
        # ``step`` when it enters stage A, two cycles later at the earliest, and spikes drained
        # in between belong to the step that ended (their parity selects it).
        step_inc = Signal()
        m.d.sync += step_inc.eq(0)
        with m.If(step_inc):
            m.d.sync += [step.eq(step + 1), prev_step.eq(step), first_step.eq(0)]
        had_input = Signal()
        out_fired = Signal()
        stop = Signal()

        # The sequencer (docs/gateware.md); one flip-flop per state;
        # its states' logic follows the delivery pipeline.
        states = (
            "IDLE STEP_WAIT INPUT INPUT_DRAIN PICK DRAIN EVAL_LAYER EVAL_ROW LEAK_LAYER"
            " LEAK_ROW STEP_END STEP_CLEAR READ_ISSUE READ_OUT DISCARD SUMMARY"
        )
        seq = OneHotFSM(m, states.split(), name="seq")

        # ---- delivery pipeline --------------------------------------------------------------
        # next-row slot -> A (weight and membrane reads) -> A2 (the words arrive; the weight
        # word is registered, membrane words still in flight are forwarded) -> B (the membrane
        # times the leak factor) -> X (add, round, saturate, evaluate) -> WB (the write request
        # reaches the membrane bank; the lanes that fired go to the fired queue). WB2 holds WB's
        # words one cycle longer, for the forwarding only.
        nx_valid = Signal()
        nx_src = Signal(16)  # the source in the slot (raw: an input channel or n_in + neuron)
        nx_layer = Signal(range(max(nl, 2)))
        nx_group, a_group = Signal(gbits), Signal(gbits)  # groups may overlap in the pipeline
        a_active = Signal()
        a_row = Signal(abits)  # the weight word of the row cycle in stage A
        a_layer = Signal(range(max(nl, 2)))
        a_k = Signal(17)
        a_last = Signal()  # the row cycle in stage A is the row's last (a register)
        nx_zero, a_zero = Signal(), Signal()  # a row of zero weights (EVAL_LAYER, LEAK_LAYER)
        a_leak = Signal()  # the row is the step's first into its layer: it applies the leak
        # Rows of a step may still be in flight when the next step starts (the early step end
        # in DRAIN), so a row carries its step's parity and whether it is the sample's first.
        a_first, a_parity = Signal(), Signal()
        a_addr = [Signal(range(max(depth, 2)), name=f"a_addr{b}") for b in range(nbanks)]
        leaked = Signal(nl)  # layers whose step leak is applied (or in flight)

        class _Stage:
            """The registers of one delivery stage: which row cycle it holds and for whom."""

            def __init__(self, prefix):
                self.valid = Signal(name=f"{prefix}_valid")
                self.mask = Signal(nbanks, name=f"{prefix}_mask")  # banks with a target
                self.layer = Signal(range(max(nl, 2)), name=f"{prefix}_layer")
                self.k = Signal(17, name=f"{prefix}_k")  # the cycle within the row
                self.final = Signal(name=f"{prefix}_final")  # the group's evaluating row
                self.zero = Signal(name=f"{prefix}_zero")  # weights are 0
                self.leak = Signal(name=f"{prefix}_leak")  # the leak is applied to the targets
                self.first = Signal(name=f"{prefix}_first")  # taken in a sample's first step
                self.parity = Signal(name=f"{prefix}_parity")  # bit 0 of its step
                self.group = Signal(gbits, name=f"{prefix}_group")
                self.ahead = Signal(name=f"{prefix}_ahead")  # an input row of the next step
                self.addr = [
                    Signal(range(max(depth, 2)), name=f"{prefix}_addr{b}") for b in range(nbanks)
                ]

            def follow(self, ahead):
                """Take over the row cycle held by stage ``ahead`` (a bubble if it has none)."""
                m.d.sync += self.valid.eq(ahead.valid)
                with m.If(ahead.valid):
                    m.d.sync += [
                        self.mask.eq(ahead.mask),
                        self.layer.eq(ahead.layer),
                        self.k.eq(ahead.k),
                        self.final.eq(ahead.final),
                        self.zero.eq(ahead.zero),
                        self.leak.eq(ahead.leak),
                        self.first.eq(ahead.first),
                        self.parity.eq(ahead.parity),
                        self.group.eq(ahead.group),
                        self.ahead.eq(ahead.ahead),
                    ]
                    m.d.sync += [a.eq(z) for a, z in zip(self.addr, ahead.addr, strict=True)]

        a2, sb, sx, wb, wb2 = (_Stage(p) for p in ("a2", "b", "x", "wb", "wb2"))
        w_q = [Signal(signed(wbits), name=f"w_q{b}") for b in range(nbanks)]
        # Fused evaluation (semantics 11): the last row of a group whose sources all lie in one
        # layer is marked final; its X stage evaluates every target.
        mark_final = Signal()  # comb: the row in the next-row slot is the group's last
        nx_final = Signal()
        a_final = Signal()
        fused = Signal()  # the current group is evaluated in the write-back

        nx_take = Signal()
        m.d.comb += nx_take.eq(nx_valid & (~a_active | a_last))
        nx_free = Signal()
        m.d.comb += nx_free.eq(~nx_valid | nx_take)

        # The input register (``---- input register`` below): a record and its kind's flags.
        in_take = Signal()
        in_valid, in_data = Signal(), Signal(32)
        in_event, in_end_step, in_start, in_end_sample = Signal(), Signal(), Signal(), Signal()

        # Input rows taken ahead (docs/gateware.md): once a step's final row into layer 0 is
        # known (marked final in the next-row slot, or in stage A: ``ahead_on``), no later row
        # of the step touches layer 0, so the next step's EVENT records are taken into a
        # second slot (``ah_*``) and delivered whenever stage A would otherwise idle. They
        # never fire (only a final row evaluates), so the step's own control ignores them
        # (``pipe_empty``).
        # A row waits in the slot until the input register holds an EVENT too (nothing else
        # takes records while the slot is open, so that EVENT stays there until the slot
        # frees): the step's last input row stays there until its step starts. In STEP_WAIT the
        # row is the new step's: it enters stage A directly if A is free (``ah_direct``), final
        # if the record after it is END_STEP (``ah_final``; INPUT then takes that record, and
        # if it arrives later, an evaluation row evaluates the group), or else moves to the
        # next-row slot. Only with prioritized input, and not with ``first_to_threshold``
        # (the step may end the sample) nor with the membrane read-out.
        lookahead = sched.prioritized_input and model.decision != "first_to_threshold"
        ahead_on = Signal()  # the current step's final row into layer 0 is known
        ahead_any = Signal()  # an EVENT of the next step was taken ahead
        ah_valid, ah_leaked = Signal(), Signal()  # ah_leaked: the step's leak is applied
        ah_src = Signal(16)
        a_ahead = Signal()
        ah_take = Signal()  # stage A takes the ahead slot's row (the next-row slot has priority)
        ah_direct = Signal()  # ... in STEP_WAIT, as the new step's row
        ah_final = Signal()  # ... as the input group's final row
        step_wait = seq.flags["STEP_WAIT"]
        if lookahead:
            # the ahead slot takes records and delivers rows ahead while ``ahead_open`` (not in
            # STEP_WAIT, which ends it); in STEP_WAIT its row goes in as the new step's
            ahead_open = ahead_on & ~step_wait
            a_free = ~a_active | a_last
            # The first row taken ahead is a leak row, exact only when the words it reads are
            # forwarded from two or more row cycles ahead (stages A2, B), not from X. With
            # one-cycle rows into layer 0 it therefore does not follow a row into layer 0
            # directly (the step's final one, held in the next-row slot behind a longer row).
            leak_gap = Const(1)
            if lay.cycles[0] == 1:
                leak_gap = ah_leaked | ~(a_active & (a_layer == 0))
            m.d.comb += [
                ah_direct.eq(step_wait & ah_valid & a_free),
                ah_final.eq(ah_direct & in_end_step),
                ah_take.eq(
                    (ahead_open & ah_valid & in_event & ~nx_valid & a_free & leak_gap) | ah_direct
                ),
            ]
        pipe_empty = Signal()  # no row of the current step in the slot or the stages
        m.d.comb += pipe_empty.eq(
            ~nx_valid
            & ~(a_active & ~a_ahead)
            & ~Cat(st.valid & ~st.ahead for st in (a2, sb, sx, wb)).any()
        )
        if lookahead:  # in STEP_WAIT, the ahead slot's row is the new step's
            with m.If(step_wait & ah_valid):
                m.d.comb += pipe_empty.eq(0)

        offsets = [
            Array(Const(lay.bank_offset[li][b], 32) for li in range(nl)) for b in range(nbanks)
        ]
        counts = [
            Array(Const(lay.bank_count[li][b], 17) for li in range(nl)) for b in range(nbanks)
        ]
        for b in range(nbanks):
            m.d.comb += [
                w_raddr[b].eq(a_row),
                v_rp[b].addr.eq(a_addr[b]),
            ]
            m.d.sync += w_q[b].eq(w_rdata[b])  # the weight of stage A's read, for stage B
        m.d.sync += a2.valid.eq(a_active)
        with m.If(a_active):
            m.d.sync += [
                a_k.eq(a_k + 1),
                a_row.eq(a_row + 1),
                a2.layer.eq(a_layer),
                a2.k.eq(a_k),
                a2.final.eq(a_final),
                a2.zero.eq(a_zero),
                a2.leak.eq(a_leak),
                a2.first.eq(a_first),
                a2.parity.eq(a_parity),
                a2.group.eq(a_group),
                a2.ahead.eq(a_ahead),
            ]
            for b in range(nbanks):
                m.d.sync += [
                    a2.mask[b].eq(a_k < counts[b][a_layer]),
                    a2.addr[b].eq(a_addr[b]),
                    a_addr[b].eq(a_addr[b] + 1),
                ]
        sb.follow(a2)
        sx.follow(sb)
        wb.follow(sx)
        wb2.follow(wb)

        def enter_stage_a(source, layer, *, final, zero, leak, first, parity, group, ahead):
            """Stage A takes the first cycle of ``source``'s row into ``layer``."""
            m.d.sync += [
                a_active.eq(1),
                a_row.eq(row_address(source, layer)),
                a_layer.eq(layer),
                a_k.eq(0),
                a_last.eq(cycles[layer] == 1),
                a_final.eq(final),
                a_zero.eq(zero),
                a_leak.eq(leak),
                a_first.eq(first),
                a_parity.eq(parity),
                a_group.eq(group),
                a_ahead.eq(ahead),
            ]
            m.d.sync += [a.eq(offsets[b][layer]) for b, a in enumerate(a_addr)]

        with m.If(nx_take):
            enter_stage_a(
                nx_src,
                nx_layer,
                final=nx_final | mark_final,
                zero=nx_zero,
                leak=~leaked.bit_select(nx_layer, 1),
                first=first_step,
                parity=step[0],
                group=nx_group,
                ahead=0,
            )
            m.d.sync += leaked.eq(leaked | (1 << nx_layer))
        with m.Elif(ah_take):  # a row of the next step into layer 0, never of a sample's first
            enter_stage_a(
                ah_src,
                0,
                final=step_wait & in_end_step,  # taken in STEP_WAIT: ``ah_final``
                zero=0,
                leak=~ah_leaked,
                first=0,
                parity=~step[0],  # in STEP_WAIT too: the step advances at its end
                group=0,
                ahead=~step_wait,  # taken in STEP_WAIT: ``ah_direct``
            )
            m.d.sync += [ah_leaked.eq(1), ah_valid.eq(0)]
        with m.Elif(a_active & a_last):
            m.d.sync += a_active.eq(0)
        with m.Elif(a_active):
            before_last = Array(Const(k - 2 if k >= 2 else -1, signed(18)) for k in lay.cycles)
            m.d.sync += a_last.eq(a_k == before_last[a_layer])
        with m.If(nx_take):
            m.d.sync += nx_final.eq(0)
        with m.Else():
            m.d.sync += nx_final.eq(nx_final | mark_final)
        with m.If(mark_final | ah_final):
            m.d.sync += fused.eq(1)
        with m.If(nx_take):
            m.d.sync += nx_valid.eq(0)
        if lookahead:
            # From registers: the row that entered stage A in the previous cycle (``a_start``;
            # an ahead slot's row is final only in STEP_WAIT) is the step's final row into
            # layer 0. STEP_WAIT clears ``ahead_on`` after this: the step ends no earlier than
            # that row's first cycle in A.
            a_start = Signal()
            m.d.sync += a_start.eq(nx_take | ah_take)
            with m.If(a_start & a_final & (a_layer == 0) & ~self.debug):
                m.d.sync += ahead_on.eq(1)
        subtract = Array(Const(layer.reset == "subtract", 1) for layer in model.layers)
        bucket_bits = max(n_buckets - 1, 1).bit_length() if sched.name == "momentum" else 0

        # Stages A2 and B: the membrane words arrive (A2) and B multiplies each by the row's
        # leak factor: the layer's leak for the step's first row into a layer (the lazy leak of
        # semantics 5.1; 0 in a sample's first step), 2^leak_shift for every other row. The
        # product p is registered shifted right by k = leak_shift, floor(p / 2^k); the leak
        # rounds toward zero, which is one more for a negative p with a remainder. That bit
        # (``round_up``) is known before the multiply: p = v * 2^t * o (o odd) has a
        # remainder iff v mod 2^(k - t) != 0 (``leak_masks``), so it is added to the weight
        # side in B, and X adds two operands per carry chain as for any row. The weight is
        # combined with the layer's threshold in B for the same reason.
        #
        # Forwarding. Row cycle r reads its targets in stage A; the row cycle d ahead writes
        # its bank at the end of its WB cycle: in the cycle of the read for d = 4 (an undefined
        # word: the banks are collision-free), after it for d < 4. Newer words win:
        #   d = 4, 3: in WB2 / WB while r is in A2: their words replace the read word there;
        #   d = 2: in WB while r is in B: its word is the one multiplied;
        #   d = 1: in WB while r is in X: X takes its word from the write request (``x_fwd``).
        # A leak row (the step's first into a layer) finds words of its layer in flight only
        # when it is the first input row taken ahead, from two or more row cycles ahead
        # (``leak_gap``): they reach B's multiply and rounding. Other forwarded words are
        # multiplied by 2^k, exactly.
        thr_l = [layer.threshold for layer in model.layers]
        neg_thr = Array(Const(-t, signed(mb + 3)) for t in thr_l)
        neg_thr1 = Array(Const(-t - 1, signed(mb + 3)) for t in thr_l)
        shift = model.leak_shift

        def remainder_mask(leak):
            """The low bits of v that make ``v * leak / 2^k`` inexact."""
            if leak == 0:
                return 0
            twos = (leak & -leak).bit_length() - 1
            return (1 << max(shift - twos, 0)) - 1

        leak_factors = Array(Const(layer.leak, shift + 1) for layer in model.layers)
        leak_masks = Array(Const(remainder_mask(layer.leak), shift) for layer in model.layers)
        b_factor = Signal(shift + 1)
        b_mask = Signal(shift)
        with m.If(a2.leak & a2.first):  # a sample's first step: the membranes start at 0
            m.d.sync += [b_factor.eq(0), b_mask.eq(0)]
        with m.Elif(a2.leak):
            m.d.sync += [b_factor.eq(leak_factors[a2.layer]), b_mask.eq(leak_masks[a2.layer])]
        with m.Else():
            m.d.sync += [b_factor.eq(1 << shift), b_mask.eq(0)]
        b_word = [Signal(mb + 1, name=f"b_word{b}") for b in range(nbanks)]
        b_fwd = [Signal(name=f"b_fwd{b}") for b in range(nbanks)]
        x_word = [Signal(mb + 1, name=f"x_word{b}") for b in range(nbanks)]  # membrane, flag
        x_v = [Signal(signed(mb), name=f"x_v{b}") for b in range(nbanks)]  # floor(v * f / 2^k)
        x_fwd = [Signal(name=f"x_fwd{b}") for b in range(nbanks)]
        x_w = [Signal(signed(wbits + 1), name=f"x_w{b}") for b in range(nbanks)]  # w (+ 1)
        x_wt = [Signal(signed(mb + 3), name=f"x_wt{b}") for b in range(nbanks)]  # w - thr
        x_wt1 = [Signal(signed(mb + 3), name=f"x_wt1{b}") for b in range(nbanks)]  # w - thr - 1

        def writes(stage, reader, b):
            """``stage`` writes the word that ``reader``'s row cycle reads in bank ``b``."""
            return stage.valid & stage.mask[b] & (stage.addr[b] == reader.addr[b])

        # Two row cycles with a common target are at least K apart (K: the cycles of the rows
        # into its layer; zero-weight rows start behind an empty pipeline), so the row cycle
        # d ahead needs forwarding only when a layer has K <= d.
        k_min = min(lay.cycles)
        fwd = {d: k_min <= d for d in (1, 2, 3, 4)}
        wb2_data = [Signal(mb + 1, name=f"wb2_data{b}") for b in range(nbanks)]
        for b in range(nbanks):
            word = v_rp[b].data
            if fwd[4]:
                m.d.sync += wb2_data[b].eq(wq_data[b])
                word = Mux(writes(wb2, a2, b), wb2_data[b], word)
            if fwd[3]:
                word = Mux(writes(wb, a2, b), wq_data[b], word)
            m.d.sync += b_word[b].eq(word)
            if fwd[2]:
                m.d.sync += b_fwd[b].eq(writes(sx, a2, b))
            if fwd[1]:
                m.d.sync += x_fwd[b].eq(writes(sx, sb, b))
            word = Mux(b_fwd[b], wq_data[b], b_word[b]) if fwd[2] else b_word[b]
            # a leak row's word (b_mask is 0 otherwise), forwarded from two or more ahead
            v = vpart(word)
            round_up = Signal(name=f"round_up{b}")
            m.d.comb += round_up.eq(v[-1] & ((v & b_mask) != 0))
            weight = Mux(sb.zero, 0, w_q[b])
            m.d.sync += [
                # the leak clears the refractory flag; x_word's membrane is used only when set
                x_word[b].eq(Cat(word[:mb], rpart(word) & ~sb.leak)),
                x_v[b].eq((vpart(word) * b_factor) >> shift),
                x_w[b].eq(weight + round_up),
                x_wt[b].eq(weight + neg_thr[sb.layer] + round_up),
                x_wt1[b].eq(weight + neg_thr1[sb.layer] + round_up),
            ]

        # Stage X: add, saturate, evaluate; the result is the write request. The threshold
        # compare is not done on the saturated sum (a second carry chain behind the add) but
        # beside it (membranes are at least as wide as weights, so ``v + w`` fits ``mb + 1``
        # bits):
        #   clamp(v + w) > thr  <=>  v + (w - thr - 1) >= 0, for vmin <= thr < vmax
        #   (never for thr >= vmax, always for thr < vmin);
        #   clamp(v + w) - thr   =  vmax - thr / vmin - thr when saturated, else v + (w - thr).
        # The saturation itself is read off the two top bits of ``v + w``.
        x_fire = Signal(nbanks)
        wb_fire = Signal(nbanks)
        wb_over = [Signal(mb + 1, name=f"wb_over{b}") for b in range(nbanks)]
        wrap = (1 << (mb + 1)) - 1

        def per_layer(values, shape):
            return Array(Const(v, shape) for v in values)[sx.layer]

        fire_never = per_layer([int(t >= vmax) for t in thr_l], 1)
        fire_always = per_layer([int(t < vmin) for t in thr_l], 1)
        hi_reset = per_layer([(vmax - t) & wrap for t in thr_l], mb + 1)
        lo_reset = per_layer([(vmin - t) & wrap for t in thr_l], mb + 1)
        hi_over = per_layer([(vmax - t - 1) & wrap for t in thr_l], mb + 1)
        lo_over = per_layer([(vmin - t - 1) & wrap for t in thr_l], mb + 1)

        for b in range(nbanks):
            word = Signal(mb + 1, name=f"x_in{b}")
            v_in = Signal(signed(mb), name=f"v_in{b}")
            if fwd[1]:
                m.d.comb += [
                    word.eq(Mux(x_fwd[b], wq_data[b], x_word[b])),
                    v_in.eq(Mux(x_fwd[b], vpart(wq_data[b]), x_v[b])),
                ]
            else:
                m.d.comb += [word.eq(x_word[b]), v_in.eq(x_v[b])]
            total = Signal(signed(mb + 2), name=f"sum{b}")
            m.d.comb += total.eq(v_in + x_w[b])
            hi = Signal(name=f"sat_hi{b}")  # total > vmax
            lo = Signal(name=f"sat_lo{b}")  # total < vmin
            m.d.comb += [hi.eq(~total[mb] & total[mb - 1]), lo.eq(total[mb] & ~total[mb - 1])]
            diff1 = Signal(signed(mb + 3), name=f"diff1_{b}")  # v + w - thr - 1
            diff = Signal(signed(mb + 3), name=f"diff{b}")  # v + w - thr
            m.d.comb += [diff1.eq(v_in + x_wt1[b]), diff.eq(v_in + x_wt[b])]
            # fires: the row is final, the target not refractory, and clamp(v + w) > thr. Only
            # the compare's sign arrives late; the rest is combined before it (``may_fire``).
            may_fire = Signal(name=f"may_fire{b}")
            fires = Signal(name=f"fires{b}")
            m.d.comb += [
                may_fire.eq(sx.final & ~rpart(word) & ~fire_never),
                fires.eq(may_fire & (fire_always | ~diff1[mb + 2])),
                x_fire[b].eq(sx.valid & sx.mask[b] & fires),
            ]
            clamped = Signal(mb, name=f"clamped{b}")  # low mb bits of clamp(total)
            m.d.comb += clamped.eq(
                Mux(hi, Const(vmax & wrap, mb + 1), Mux(lo, Const(vmin & wrap, mb + 1), total))
            )
            reset_full = Mux(hi, hi_reset, Mux(lo, lo_reset, diff[: mb + 1]))
            reset_v = Mux(subtract[sx.layer], reset_full, 0)
            # A refractory target is written back unchanged.
            kept = Mux(rpart(word), word, Cat(clamped, 0))
            with m.If(sx.valid & sx.mask[b]):
                request_write(b, sx.addr[b], Mux(fires, Cat(reset_v[:mb], Const(1, 1)), kept))
            if bucket_bits:  # clamp(total) - thr - 1, mod 2^(mb+1): the momentum bucket's base
                m.d.sync += wb_over[b].eq(Mux(hi, hi_over, Mux(lo, lo_over, diff1[: mb + 1])))
        m.d.sync += wb_fire.eq(x_fire)

        # ---- fired-neuron queue: one entry per write-back cycle that fired ----------------
        # Lane j of an entry is target ``base + j`` (banks rotated by the layer's start), so
        # the drain emits spikes in ascending neuron order.
        k_max = max(lay.cycles)
        f = sched.group_size
        overlap = group_overlap(model)  # the queue then holds entries of at most three rows
        fq_width, fq_depth = fired_queue_shape(model, lay)
        m.submodules.fired = fq = BlockFIFO(width=fq_width, depth=fq_depth)
        fq_count = Signal(range(3 * k_max + 2))
        fq_empty = Signal(init=1)  # fq_count == 0, a register
        rot_fire = Signal(nbanks)
        rot_bucket = [Signal(max(bucket_bits, 1), name=f"rot_bucket{j}") for j in range(nbanks)]
        with m.Switch(wb.layer):
            for li in range(nl):
                s0 = lay.starts[li] % nbanks
                with m.Case(li):
                    for j in range(nbanks):
                        src = (j + s0) % nbanks
                        m.d.comb += rot_fire[j].eq(wb_fire[src])
                        if bucket_bits:
                            shifted = wb_over[src] >> sched.momentum_shift
                            m.d.comb += rot_bucket[j].eq(
                                Mux(shifted > top_bucket, top_bucket, shifted)
                            )
        fq_base = Signal(nbits)
        m.d.comb += fq_base.eq(Array(Const(s, 16) for s in lay.starts)[wb.layer] + wb.k * nbanks)
        fq_in = [wb.group, wb.parity, fq_base, wb.layer, rot_fire]
        if bucket_bits:
            fq_in += [r[:bucket_bits] for r in rot_bucket]
        count_stored = fire_count_stored(model, lay)  # the drain's lane count, in the entry
        if count_stored:
            fire_count = Signal(range(nbanks + 1))
            m.d.comb += fire_count.eq(sum(wb_fire[j] for j in range(nbanks)))
            fq_in += [fire_count]
        # The entry is ready one cycle after its write-back (``fq_entry``, a register between
        # the fire decision and the queue's write port); it is written to the queue unless it
        # goes straight to the drain (``bypass``, below).
        fq_entry = Signal()
        m.d.sync += [fq.w_data.eq(Cat(*fq_in)), fq_entry.eq(rot_fire != 0)]
        # Entries the rows in flight may still write: a final row reserves its K cycles when it
        # is marked final in the next-row slot (``reserve``) and gives one back as each cycle
        # leaves WB (its entry, if it fired, is then in ``fq_entry``). Evaluation rows reserve
        # nothing: no group starts by overlap before they have settled (EVAL_ROW). Overlap
        # starts a group only while at most K entries are queued or reserved; the current
        # group's final row and the started group's add at most 2K more before the next such
        # check, so the queue never holds more than 3K. The check reads ``fq_room``, a
        # register: queued and reserved entries one cycle earlier. In between, only the current
        # group's final row can have been reserved (marked at its last pick, in a check cycle),
        # which the bound allows for.
        fq_reserved = Signal(range(3 * k_max + 2))
        fq_room = Signal()
        if overlap:
            reserve = Signal.like(a_k)  # comb: the K of a row marked final in this cycle
            m.d.comb += reserve.eq(Mux(mark_final, cycles[nx_layer], Mux(ah_final, cycles[0], 0)))
            m.d.sync += fq_reserved.eq(fq_reserved + reserve - (wb.valid & wb.final & ~wb.zero))
            m.d.sync += fq_room.eq(fq_count + fq_entry + fq_reserved <= k_max)

        def load_row(source, code, *, input_row=False, step_first=False):
            """Fill the next-row slot with ``source`` (code ``code``); count synops, touch.
            ``input_row``: an input's row, always of group 0 (no group ends while inputs
            arrive); ``step_first``: the step's first row, loaded as the step is reset."""
            m.d.sync += [
                nx_valid.eq(1),
                nx_src.eq(source),
                nx_layer.eq(code),
                nx_zero.eq(0),
                syn_inc.eq(sizes[code]),  # added to c_synops in the next cycle
                input_inc.eq(code == 0),  # counted in the next cycle
            ]
            # the group's count may be one cycle late (``group_inc``)
            if not input_row:  # an input row's: 0 from STEP_WAIT on
                m.d.sync += nx_group.eq(group + group_inc)
            m.d.sync += touched.eq((1 << code) if step_first else touched | (1 << code))

        # ---- spike output buffer: the output register and a skid register -----------------
        # The drain emits whenever the skid register is empty (``spk_free``, a register), so
        # the output's ready never reaches the drain's decisions (the fired queue's pop). A
        # spike emitted while the output register is held waits in the skid register, which is
        # therefore full only while the output register is (SUMMARY tests the latter).
        spk_valid, skid_valid = Signal(), Signal()
        spk, skid = Signal(SpikeRecord), Signal(SpikeRecord)
        new_valid, new_spk = Signal(), Signal(SpikeRecord)  # a spike emitted in this cycle
        m.d.comb += [self.spikes.valid.eq(spk_valid), self.spikes.payload.eq(spk)]
        with m.If(~spk_valid | self.spikes.ready):
            m.d.sync += [
                spk_valid.eq(skid_valid | new_valid),
                spk.eq(Mux(skid_valid, skid.as_value(), new_spk.as_value())),
                skid_valid.eq(0),
            ]
        with m.Elif(new_valid):
            m.d.sync += [skid_valid.eq(1), skid.eq(new_spk)]
        spk_free = Signal()
        m.d.comb += spk_free.eq(~skid_valid)

        def emit_spike(neuron, layer, group, bucket):
            """Count a fired neuron's spike and send it out (with ``spikes="outputs"`` only an
            output neuron's); a hidden spike enters the pending structure (semantics 5.4)."""
            m.d.comb += [
                new_spk.step.eq(Mux(d_parity == step[0], step, prev_step)),
                new_spk.group.eq(group),
                new_spk.neuron.eq(neuron),
            ]
            m.d.sync += c_spikes.eq(c_spikes + 1)
            if self._spikes == "all":
                m.d.comb += new_valid.eq(1)
            with m.If(layer == nl - 1):
                m.d.sync += out_fired.eq(1)
                if self._spikes == "outputs":
                    m.d.comb += new_valid.eq(1)
            with m.Else():
                m.d.comb += [
                    pend.push_valid.eq(1),
                    pend.push_source.eq(n_in + neuron),
                    pend.push_layer.eq(layer + 1),
                    pend.push_bucket.eq(bucket),
                ]

        # ---- drain of the fired-neuron queue: one spike per cycle, ascending -------------
        d_mask = Signal(nbanks)
        d_group = Signal(gbits)
        d_parity = Signal()
        d_base = Signal(nbits)
        d_layer = Signal.like(wb.layer)
        d_bucket = [Signal(max(bucket_bits, 1), name=f"d_bucket{j}") for j in range(nbanks)]
        d_lane = Signal(range(max(nbanks, 2)))
        for j in reversed(range(nbanks)):  # the last assignment wins: the lowest set lane
            with m.If(d_mask[j]):
                m.d.comb += d_lane.eq(j)
        drain_idle = Signal()
        m.d.comb += drain_idle.eq(fq_empty & (d_mask == 0) & ~fq_entry)
        # ``settled``: every row delivered and every spike sent. From a register: both were
        # empty in the previous cycle, and only a row loaded into the slot since (``nx_valid``)
        # can have started anything.
        quiet, quiet_next = Signal(), Signal()
        m.d.comb += quiet_next.eq(pipe_empty & drain_idle)
        m.d.sync += quiet.eq(quiet_next)
        tail = Signal()  # a step ended before its rows settled (see the early step end)
        with m.If(quiet):
            m.d.sync += tail.eq(0)
        with m.Elif(step_inc):  # the cycle after a step's end
            m.d.sync += tail.eq(1)
        settled = Signal()
        m.d.comb += settled.eq(quiet & ~nx_valid)
        # The next entry is loaded as the current one's last spike goes out, so that entries
        # drain back to back (``d_mask`` is then reloaded, overriding the emit's update): popped
        # from the queue, or, when the queue is empty, the new entry itself (``bypass``: it
        # skips the queue's two cycles).
        emit = Signal()
        d_count = Signal(range(nbanks + 1))  # the lanes set in d_mask, a register
        d_free = Signal()  # the drain takes an entry in this cycle if one is there
        m.d.comb += [
            emit.eq((d_mask != 0) & spk_free),
            d_free.eq((d_count == 0) | ((d_count == 1) & spk_free)),
        ]
        pop, bypass = Signal(), Signal()
        m.d.comb += [
            pop.eq(fq.r_rdy & d_free),
            fq.r_en.eq(pop),
            bypass.eq(fq_entry & fq_empty & d_free),
            fq.w_en.eq(fq_entry & ~bypass),
        ]
        with m.If(fq.w_en & ~pop):
            m.d.sync += [fq_count.eq(fq_count + 1), fq_empty.eq(0)]
        with m.Elif(pop & ~fq.w_en):
            m.d.sync += [fq_count.eq(fq_count - 1), fq_empty.eq(fq_count == 1)]
        # ``pushing``: a spike of a hidden layer may still be pushed: a final row into a hidden
        # layer is in stages A to WB, or one of its fired-queue entries is written, queued or
        # drained, or a push is on its way (read through ``done_q``, a register: one
        # cycle late, which is safe there, once no row is taken any more, since it can then
        # only fall).
        out_layer = nl - 1  # the layers below it are hidden: their spikes are pushed
        fq_w_hidden = Signal()  # the new entry (``fq_entry``) is a hidden layer's
        m.d.sync += fq_w_hidden.eq(wb.layer < out_layer)
        # Queued entries of hidden layers. A popped entry is subtracted one cycle late, from
        # the drain's registers (no compare behind the block-RAM output): in that cycle the
        # drain holds it (``d_mask`` is not 0), so ``pushing`` is the same.
        fq_hidden = Signal(range(fq_depth + 2))
        popped = Signal()  # the drain's entry was popped from the queue in the previous cycle
        m.d.sync += popped.eq(pop)
        popped_hidden = popped & (d_layer < out_layer)
        m.d.sync += fq_hidden.eq(fq_hidden + (fq.w_en & fq_w_hidden) - popped_hidden)
        pushing = Signal()
        m.d.comb += pushing.eq(
            (a_active & a_final & (a_layer < out_layer))
            | Cat(st.valid & st.final & (st.layer < out_layer) for st in (a2, sb, sx, wb)).any()
            | (fq_entry & fq_w_hidden)
            | (fq_hidden != 0)
            | ((d_mask != 0) & (d_layer < out_layer))
            | pend.push_valid
            | pend_mod.push_valid
        )
        with m.If(emit):
            d_n = Signal(16)
            m.d.comb += d_n.eq(d_base + d_lane)
            m.d.sync += [d_mask.eq(d_mask & ~(1 << d_lane)), d_count.eq(d_count - 1)]
            emit_spike(d_n, d_layer, d_group, Array(d_bucket)[d_lane] if bucket_bits else 0)
        with m.If(pop | bypass):
            entry = Mux(fq_empty, fq.w_data, fq.r_data)  # the queue is empty when bypassing
            fields = [(d_group, gbits), (d_parity, 1), (d_base, nbits), (d_layer, len(d_layer))]
            fields += [(d_mask, nbanks)]
            fields += [(d, bucket_bits) for d in d_bucket] if bucket_bits else []
            fields += [(d_count, len(d_count))] if count_stored else []
            pos = 0
            for sig, width in fields:
                m.d.sync += sig.eq(entry[pos : pos + width])
                if sig is d_mask and not count_stored:
                    m.d.sync += d_count.eq(sum(entry[pos + j] for j in range(width)))
                pos += width

        # ---- group controller -----------------------------------------------------------
        picks = Signal(range(f + 1)) if f else Signal()  # picks of the group, up to F
        picked = Signal()  # the group has a pick
        pick_go = Signal()  # take the pending head in this cycle (see PICK)
        # ``cont``: the group takes another pick. From a register: the count of the next cycle
        # is the count plus the push reaching the structure minus the take, and the picks of
        # the next cycle are the picks plus the take; a group starts (picks reset) with at least
        # one entry pending (``start_picks``). ``sync`` also ends the group when a take empties
        # its layer (``last``; nothing is pushed while a group picks, so the group's layer
        # stays the lowest until then).
        cont = Signal()
        arriving, taking = pend_mod.push_valid, pend.head.ready

        def next_count_at_least(n):
            """count + arriving - taking >= n, as compares of ``count`` with constants (no
            adder before them)."""
            if n <= 0:
                return Const(1)
            return Mux(
                arriving & ~taking,
                pend.count >= n - 1,
                Mux(taking & ~arriving, pend.count >= n + 1, pend.count >= n),
            )

        more_picks = Mux(pick_go, picks < f - 1, picks < f) if f else 1  # picks + pick_go < F
        m.d.sync += cont.eq(next_count_at_least(1) & more_picks & ~(pick_go & pend.last))
        # ``pend.count >= F`` (the overlap check) and ``pend.count == 0`` (the end of the
        # step) from registers likewise.
        enough = Signal()
        m.d.sync += enough.eq(~pend.clear & next_count_at_least(f))
        pend_empty, pend_empty_next = Signal(), Signal()
        m.d.comb += pend_empty_next.eq(pend.clear | ~next_count_at_least(1))
        m.d.sync += pend_empty.eq(pend_empty_next)
        # What the early step end reads, for the next cycle: pend_empty & ~pushing & ~tail, from the
        # values they take (``tail``'s reset at START aside: a step starts between).
        may_end_early_next = Signal()
        m.d.comb += may_end_early_next.eq(
            pend_empty_next & ~pushing & ~(~quiet & (step_inc | tail))
        )

        def start_picks():
            """The group's picks start: the first is requested now (``pick_go``, as PICK
            would one cycle later), the others in state PICK."""
            reset_picks()
            m.d.sync += [grp_mixed.eq(0), pick_go.eq(pend.head.valid & nx_free)]

        def reset_picks():
            """A group's pick counters at its start. The states that start a group but PICK
            (which is one) do this in every cycle, not only at the group's end: they take no
            pick, so the resets depend on the state alone."""
            m.d.sync += [picks.eq(0), picked.eq(0), cont.eq(1)]

        pick_code = Signal(range(max(nl, 2)))
        grp_code = Signal.like(pick_code)
        grp_out = Signal()  # grp_code is the output layer's (a register, not a compare)
        early_ok = Signal()  # grp_out & ~debug, a register (see the early step end)
        early_ok_next = Signal()  # the value it takes (set at a pick and in STEP_WAIT)
        m.d.comb += early_ok_next.eq(early_ok)
        m.d.sync += early_ok.eq(early_ok_next)
        grp_mixed = Signal()
        # The head's source and layer code, registered: a pick is requested only while the
        # head is valid, and it keeps its payload until the take (pending.py), so the take uses
        # the payload of the cycle before, from flip-flops, not from a block-RAM output.
        pick_src = Signal(16)
        m.d.sync += [pick_code.eq(pend.head.payload.code), pick_src.eq(pend.head.payload.source)]

        # ---- read-out -------------------------------------------------------------------
        ro_n = Signal(16)
        ro_last = Signal()  # ro_n is the last neuron (a register, not a compare)
        ro_bank = Signal(range(max(nbanks, 2)))
        ro_addr = Signal(range(max(depth, 2)))

        # The take of a pick requested in PICK (``pick_go``): driven by that register alone, not
        # by the state, so the take logic of the core and of the pending structure starts at a
        # flip-flop. The head is still valid (it stays so until a push, pick or clear, and
        # nothing pushes during picks) and the slot still free (nothing else fills it).
        m.d.comb += pend.head.ready.eq(pick_go)
        with m.If(pick_go):
            pick_out = pick_code == nl - 1  # the pick is into the output layer
            m.d.sync += [
                pick_go.eq(0),
                picked.eq(1),
                grp_code.eq(pick_code),
                grp_out.eq(pick_out),
            ]
            m.d.comb += early_ok_next.eq(pick_out & ~self.debug)
            if f:
                m.d.sync += picks.eq(picks + 1)
            with m.If(picked & (pick_code != grp_code)):
                m.d.sync += grp_mixed.eq(1)
            load_row(pick_src, pick_code)

        # The pending structure is cleared (at the end of a step with entries left) from a
        # register, in the cycle after the decision; ``busy`` follows from the next cycle on.
        clear_go = Signal()
        m.d.comb += pend.clear.eq(clear_go)

        # ---- input register ---------------------------------------------------------------
        # Input records pass one register, with their kind decoded into flags, so that a
        # record's kind and channel reach the slot, the final mark and the counters from
        # flip-flops. The stream is ready while the register is empty or taken (``in_take``).
        m.d.comb += self.events.ready.eq(~in_valid | in_take)
        with m.If(self.events.ready):
            new_kind = self.events.payload.kind
            m.d.sync += [
                in_valid.eq(self.events.valid),
                in_data.eq(self.events.payload.data),
                in_event.eq(self.events.valid & (new_kind == InputKind.EVENT)),
                in_end_step.eq(self.events.valid & (new_kind == InputKind.END_STEP)),
                in_start.eq(self.events.valid & (new_kind == InputKind.START)),
                in_end_sample.eq(self.events.valid & (new_kind == InputKind.END_SAMPLE)),
            ]
        m.d.comb += self.idle.eq(0)

        if lookahead:
            # An EVENT of the next step into the ahead slot (not in a cycle of a pick's take,
            # which counts its own row). The take reads registers only: it drives the events
            # stream's ready. ``ahead_on`` is set as END_STEP marks the step's final row into
            # layer 0 in the next-row slot (or the cycle after such a row enters stage A), so
            # the first ahead row can follow that row without a gap (``leak_gap`` aside).
            ahead_take = Signal()
            m.d.comb += ahead_take.eq(ahead_open & ~ah_valid & ~pick_go & ~self.debug & in_event)
            with m.If(ahead_take):
                m.d.comb += in_take.eq(1)
                m.d.sync += [
                    ah_valid.eq(1),
                    ah_src.eq(in_data[:16]),
                    ahead_any.eq(1),
                    syn_inc.eq(sizes[0]),
                    input_inc.eq(1),
                ]

        with seq.state("IDLE"):
            m.d.comb += [self.idle.eq(1), in_take.eq(1), self.weights.ready.eq(1)]
            for b in range(nbanks):
                m.d.comb += w_we[b].eq(self.weights.valid & (wr.bank == b))
            with m.If(in_start):
                m.d.sync += [pend_mod.seed.eq(in_data), pend_mod.load.eq(1)]
                m.d.sync += [
                    step.eq(0),
                    c_spikes.eq(0),
                    c_synops.eq(0),
                    c_groups.eq(0),
                    c_dropped.eq(0),
                    c_inputs.eq(0),
                    c_cycles.eq(0),
                    first_step.eq(1),
                    stop.eq(0),
                    ahead_on.eq(0),
                    ahead_any.eq(0),
                    tail.eq(0),
                    ah_valid.eq(0),
                    ah_leaked.eq(0),
                ]
                seq.goto("STEP_WAIT")

        def input_record(step_first):
            """Take an ``EVENT`` (its row, or its entry in the pending structure) or the
            ``END_STEP`` in the input register."""
            with m.If(in_event):
                if sched.prioritized_input:
                    free = Const(1) if step_first else nx_free  # the slot is empty in STEP_WAIT
                    m.d.comb += in_take.eq(free)
                    with m.If(free):
                        m.d.sync += had_input.eq(1)
                        load_row(in_data[:16], Const(0, 1), input_row=True, step_first=step_first)
                else:
                    m.d.comb += [
                        in_take.eq(1),
                        pend.push_valid.eq(1),
                        pend.push_source.eq(in_data[:16]),
                        pend.push_layer.eq(0),
                        pend.push_bucket.eq(top_bucket),
                    ]
            with m.Else():  # END_STEP
                m.d.comb += in_take.eq(1)
                if sched.prioritized_input and not step_first:  # (the slot is empty in STEP_WAIT)
                    # The input group's last row, if still in the slot (or taken now),
                    # evaluates its targets; otherwise an evaluation row does (EVAL_LAYER).
                    m.d.comb += mark_final.eq(nx_valid)
                    if lookahead:  # no later row of the step enters layer 0
                        with m.If(nx_valid & ~self.debug):
                            m.d.sync += ahead_on.eq(1)
                seq.goto("INPUT_DRAIN")

        with seq.state("STEP_WAIT"):
            # The step's group state is reset in every cycle here (nothing else uses it until
            # the step starts), so the resets depend on the state alone, not on the record;
            # ``ahead_any``: input rows of the step were taken ahead. The slot is empty here
            # (a step ends settled, or early with its rows all taken), and its group is 0 for
            # the step's input rows, which do not set it. ``ahead_on`` ends here (the ahead
            # slot's takes wait for this state to pass).
            m.d.sync += [
                ahead_on.eq(0),
                nx_group.eq(0),
                group.eq(0),
                grp_code.eq(0),  # the input group's, for the overlap's checks
                grp_out.eq(nl == 1),
                grp_mixed.eq(0),
                touched.eq(ahead_any),
                leaked.eq((ah_leaked | ah_direct) & ahead_any),
                had_input.eq(ahead_any),
                out_fired.eq(0),
            ]
            m.d.comb += early_ok_next.eq((nl == 1) & ~self.debug)
            with m.If(ahead_any):
                # The row still in the ahead slot (counted when it was taken) enters stage A
                # (``ah_direct``) or moves to the next-row slot.
                m.d.sync += [ahead_any.eq(0), ah_leaked.eq(0), ah_valid.eq(0)]
                m.d.sync += [
                    nx_valid.eq(ah_valid & ~ah_direct),
                    nx_src.eq(ah_src),
                    nx_layer.eq(0),
                    nx_zero.eq(0),
                ]
                seq.goto("INPUT")
            with m.Elif(in_end_sample):
                m.d.comb += in_take.eq(1)
                seq.goto("SUMMARY")
            with m.Elif(in_start):
                m.d.comb += in_take.eq(1)  # protocol error: ignored
            with m.Elif(in_valid):  # the step's first record, taken as in INPUT
                seq.goto("INPUT")
                input_record(step_first=True)

        with seq.state("INPUT"):
            with m.If(in_event | in_end_step):
                input_record(step_first=False)
            with m.Elif(in_valid):
                # START or END_SAMPLE before END_STEP: a protocol error; treat as the
                # end of the step's inputs, leaving the record for STEP_WAIT.
                seq.goto("INPUT_DRAIN")

        def next_group(ending):
            """Count the group that ends in this cycle (``ending``), then start the next one,
            or end the step: no entry pending, the cap reached (the rest are dropped) or, with
            ``first_to_threshold``, an output neuron fired."""
            if ending:
                m.d.sync += group_inc.eq(1)
            cap = sched.max_groups_per_step
            with m.If(out_fired if ending and model.decision == "first_to_threshold" else 0):
                m.d.sync += stop.eq(1)
                seq.goto("LEAK_LAYER")
            with m.Elif(pend_empty & leaked.all() & ~self.debug):
                finish_step()  # what LEAK_LAYER would do next
            with m.Elif(pend_empty):
                seq.goto("LEAK_LAYER")
            with m.Elif((group + int(ending) >= cap) if cap else 0):
                m.d.sync += c_dropped.eq(c_dropped + pend.count)
                seq.goto("LEAK_LAYER")
            with m.Else():
                start_picks()
                seq.goto("PICK")

        def start_readout():
            m.d.sync += [
                ro_n.eq(0),
                ro_last.eq(model.n_neurons == 1),
                ro_bank.eq(0),
                ro_addr.eq(0),
            ]
            seq.goto("READ_ISSUE")

        def finish_step():
            m.d.sync += step_inc.eq(1)
            with m.If(stop):
                seq.goto("DISCARD")
            with m.Else():
                seq.goto("STEP_WAIT")

        # Overlap (``group_overlap``): the next group starts before the current one has
        # settled when its picks are known already (docs/gateware.md): for ``fifo`` (F >= 1)
        # when F entries are pending (entries are only appended until the current group has
        # settled, so they are the F oldest the contract's pick takes then), for every
        # scheduler when the current group's targets are the output layer (its spikes push
        # nothing, so the pending set is final) and an entry is pending, but not with
        # ``first_to_threshold`` (the group may end the sample). Checked at the group's last
        # pick and in every cycle of its drain.
        may_overlap = Signal()
        if overlap:
            cap = sched.max_groups_per_step
            may = ~grp_mixed & fq_room
            if cap:
                may &= group + 1 < cap
            into_output = grp_out
            if model.decision == "first_to_threshold":  # fifo with F >= 1 (group_overlap)
                may &= enough & ~into_output
            elif sched.name == "fifo" and f:
                may &= enough | (into_output & ~pend_empty)
            else:
                may &= into_output & ~pend_empty
            m.d.comb += may_overlap.eq(may)

        def start_overlapped_group():
            m.d.sync += [group_inc.eq(1), touched.eq(0), fused.eq(0)]
            start_picks()
            seq.goto("PICK")

        # The early step end: the step is over, without waiting for the current group to
        # settle, when its targets are the output layer, its rows are all taken, no entry is
        # pending and nothing can push one (``pushing``); the next step's rows follow its rows
        # (each row carries its step's parity for the spikes it fires). Not with the membrane
        # read-out, nor with ``first_to_threshold`` (the group may end the sample).
        # A spike names its step by its row's parity, so at most one step may still be in
        # flight when a step ends: after an early end (``tail``) the next step does not end
        # early until everything has settled once. (``early_ok`` reads ``debug`` at the picks.)
        # ``done``: settled or ending early, ``(quiet | early_ok & may_end_early) & ~nx_valid``,
        # the first part one register computed from the values its terms take.
        done_q = Signal()
        if model.decision != "first_to_threshold":
            m.d.sync += done_q.eq(quiet_next | (early_ok_next & may_end_early_next))
        else:
            m.d.sync += done_q.eq(quiet_next)
        done = Signal()
        m.d.comb += done.eq(done_q & ~nx_valid)

        with seq.state("INPUT_DRAIN"):
            reset_picks()
            with m.If(done & had_input & fused):  # in the last row's WB
                m.d.sync += [touched.eq(0), fused.eq(0)]
                next_group(ending=True)
            with m.Elif(settled & had_input):
                seq.goto("EVAL_LAYER")
            with m.Elif(settled):
                next_group(ending=False)
            with m.Elif(had_input & fused & may_overlap):
                start_overlapped_group()

        with seq.state("PICK"):
            # A pick takes two cycles: the request here (``pick_go``, when a head is valid
            # and the slot free) and the take in the next cycle (above the state machine).
            with m.If(cont):
                m.d.sync += pick_go.eq(~pick_go & pend.head.valid & nx_free)
            with m.Elif(~pick_go):
                # The last pick was made in the previous cycle: its row is in the next-row
                # slot. With one source layer, evaluate in its write-back.
                m.d.comb += mark_final.eq(~grp_mixed)
                seq.goto("DRAIN")
                with m.If(may_overlap):
                    start_overlapped_group()

        with seq.state("DRAIN"):
            reset_picks()
            with m.If(done & fused):  # evaluated in the last row's write-back
                m.d.sync += [touched.eq(0), fused.eq(0)]
                next_group(ending=True)
            with m.Elif(settled):
                seq.goto("EVAL_LAYER")
            with m.Elif(fused & may_overlap):
                start_overlapped_group()

        def lowest_layer(flags, name):
            """The lowest layer whose flag is set (comb)."""
            lowest = Signal.like(nx_layer, name=name)
            for i in reversed(range(nl)):  # the last assignment wins: the lowest layer
                with m.If(flags[i]):
                    m.d.comb += lowest.eq(i)
            return lowest

        def load_zero_row(layer, final):
            """Fill the next-row slot with a row of zero weights over all of ``layer``."""
            m.d.sync += [
                nx_valid.eq(1),
                nx_layer.eq(layer),
                nx_group.eq(group),
                nx_final.eq(final),
                nx_zero.eq(1),
            ]

        with seq.state("EVAL_LAYER"):
            reset_picks()
            with m.If(touched == 0):
                next_group(ending=True)
            with m.Else():
                # The lowest touched layer is evaluated by an evaluation row: a final row
                # of zero weights over all its neurons (clamp(v + 0) = v, so stage X applies
                # exactly the evaluation rule), L neurons per cycle through the fired queue.
                # Its weight words (read at a stale row address) are never used.
                lowest = lowest_layer(touched, "eval_layer")
                m.d.sync += touched.eq(touched & ~(1 << lowest))
                load_zero_row(lowest, final=1)
                seq.goto("EVAL_ROW")

        with seq.state("EVAL_ROW"):
            with m.If(settled):
                seq.goto("EVAL_LAYER")

        with seq.state("LEAK_LAYER"):
            # The layers no row touched in this step are leaked by a row of zero weights over
            # all their neurons, not evaluated (semantics 5.1: the leak of every neuron).
            with m.If(leaked.all() & ~pend_empty):
                seq.goto("STEP_END")
            with m.Elif(leaked.all() & self.debug):
                with m.If(settled):  # the step may have ended early (DRAIN)
                    start_readout()
            with m.Elif(leaked.all()):
                finish_step()
            with m.Else():
                load_zero_row(lowest_layer(~leaked, "leak_layer"), final=0)
                seq.goto("LEAK_ROW")

        with seq.state("LEAK_ROW"):
            with m.If(settled):
                seq.goto("LEAK_LAYER")

        with seq.state("STEP_END"):  # entries are left (dropped, or an early stop): clear them
            m.d.sync += clear_go.eq(1)
            seq.goto("STEP_CLEAR")

        with seq.state("STEP_CLEAR"):
            m.d.sync += clear_go.eq(0)
            with m.If(~clear_go & ~pend.busy & self.debug):
                start_readout()
            with m.Elif(~clear_go & ~pend.busy):
                finish_step()

        with seq.state("READ_ISSUE"):
            for b in range(nbanks):
                m.d.comb += v_rp[b].addr.eq(ro_addr)
            seq.goto("READ_OUT")

        with seq.state("READ_OUT"):
            for b in range(nbanks):
                m.d.comb += v_rp[b].addr.eq(ro_addr)
            m.d.comb += [
                self.membranes.valid.eq(1),
                self.membranes.payload.eq(vpart(v_rdata[ro_bank])),
            ]
            with m.If(self.membranes.ready):
                m.d.sync += [ro_n.eq(ro_n + 1), ro_last.eq(ro_n == model.n_neurons - 2)]
                if nbanks == 1:
                    m.d.sync += ro_addr.eq(ro_addr + 1)
                else:
                    with m.If(ro_bank == nbanks - 1):
                        m.d.sync += [ro_bank.eq(0), ro_addr.eq(ro_addr + 1)]
                    with m.Else():
                        m.d.sync += ro_bank.eq(ro_bank + 1)
                with m.If(ro_last):
                    finish_step()
                with m.Else():
                    seq.goto("READ_ISSUE")

        with seq.state("DISCARD"):
            m.d.comb += in_take.eq(1)
            with m.If(in_end_sample):
                seq.goto("SUMMARY")

        with seq.state("SUMMARY"):  # after the last spike (the last step may have ended early)
            m.d.comb += self.summary.valid.eq(~spk_valid & settled)
            with m.If(self.summary.ready & ~spk_valid & settled):
                seq.goto("IDLE")

        with m.If(~self.idle):
            m.d.sync += c_cycles.eq(c_cycles + 1)
        m.d.comb += [
            self.counters.steps.eq(step),
            self.counters.spikes.eq(c_spikes),
            self.counters.synops.eq(c_synops),
            self.counters.groups.eq(c_groups),
            self.counters.dropped.eq(c_dropped),
            self.counters.input_events.eq(c_inputs),
            self.counters.cycles.eq(c_cycles),
            self.summary.payload.eq(self.counters),
        ]
        return m
