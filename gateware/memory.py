"""Block RAM conventions and the block-RAM FIFO shared by the core and the board link.

**Collision-free memories.** A synchronous read of the address written in the same cycle must,
in Amaranth, return the old word. Neither iCE40 nor ECP5 block RAM guarantees that, so yosys
emulates it in logic: it delays the write by a cycle and adds a bypass, about 40 flip-flops
and 26 LUTs per memory. Most memories here never use the word of such a read (the reader
waits, or reads another half of the memory); they are built with ``attrs=COLLISION_FREE``,
yosys's ``no_rw_check`` attribute ("a collision reads an undefined word"), and cost no logic.
Yosys applies the attribute when it merges a read register into a memory port, which is how it
reads Verilog; Amaranth's RTLIL (the board builds) has the ports already synchronous, so the
build runs :data:`YOSYS_AFTER_READ` first. The promise is tested: the equivalence tests are run
a second time with every such read port transparent (a collision reads the new word), and
must give the same traces (``tests/gateware/test_memory.py``).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["COLLISION_FREE", "YOSYS_AFTER_READ", "BlockFIFO"]

COLLISION_FREE = {"no_rw_check": 1}
# Splits the synchronous read ports of an RTLIL design back into a port and a register, which
# synthesis merges again, now honouring ``no_rw_check``.
YOSYS_AFTER_READ = "memory_nordff"


class BlockFIFO(wiring.Component):
    """A first-word-fall-through FIFO of ``depth`` entries: ``depth - 1`` in a collision-free
    memory, one in the memory's read register.

    The ports and timing are those of ``amaranth.lib.fifo.SyncFIFOBuffered`` (an entry written
    in cycle t can be read from cycle t + 2), without ``level``. The memory is read only when it
    holds an entry, and it holds none at the read address when the write address equals it, so
    reads never collide with writes.

    Members
    -------
    w_data, w_en, w_rdy
        Write side: ``w_data`` is taken when ``w_en`` and ``w_rdy``.
    r_data, r_en, r_rdy
        Read side: ``r_data`` is valid while ``r_rdy``; ``r_en`` consumes it.
    """

    def __init__(self, *, width: int, depth: int):
        if depth < 2:
            raise ValueError(f"BlockFIFO depth must be at least 2, got {depth}")
        self._width = width
        self._depth = depth
        super().__init__(
            {
                "w_data": In(width),
                "w_en": In(1),
                "w_rdy": Out(1),
                "r_data": Out(width),
                "r_en": In(1),
                "r_rdy": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        inner = self._depth - 1  # entries in the memory
        m.submodules.storage = storage = Memory(
            shape=self._width, depth=max(inner, 2), init=[], attrs=COLLISION_FREE
        )
        wr, rd = storage.write_port(), storage.read_port()
        produce = Signal(range(inner))
        consume = Signal(range(inner))
        stored = Signal(range(inner + 1))

        def advance(pointer):
            return Mux(pointer == inner - 1, 0, pointer + 1)

        write = Signal()
        load = Signal()  # move the oldest stored entry into the read register
        m.d.comb += [
            self.w_rdy.eq(stored != inner),
            write.eq(self.w_en & self.w_rdy),
            load.eq((stored != 0) & (~self.r_rdy | self.r_en)),
            wr.addr.eq(produce),
            wr.data.eq(self.w_data),
            wr.en.eq(write),
            rd.addr.eq(consume),
            rd.en.eq(load),
            self.r_data.eq(rd.data),
        ]
        with m.If(write):
            m.d.sync += produce.eq(advance(produce))
        with m.If(load):
            m.d.sync += [consume.eq(advance(consume)), self.r_rdy.eq(1)]
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        m.d.sync += stored.eq(stored + write - load)
        return m
