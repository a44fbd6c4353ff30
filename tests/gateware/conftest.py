"""Fixtures of the gateware tests."""

import pytest
from amaranth.lib.memory import Memory


@pytest.fixture
def reads_see_new_data(monkeypatch):
    """While active, a collision-free memory's synchronous reads are transparent to its writes."""
    elaborate = Memory.elaborate

    def transparent(self, platform):
        if self.attrs.get("no_rw_check"):
            for port in self.read_ports:
                if port.domain != "comb":
                    port._transparent_for = tuple(
                        w for w in self.write_ports if w.domain == port.domain
                    )
        return elaborate(self, platform)

    monkeypatch.setattr(Memory, "elaborate", transparent)
