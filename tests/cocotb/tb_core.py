"""cocotb test module of the generated neuron core (thin: the bench lives in the package).

The driver, monitors, checker and the test itself are in :mod:`unlayered.gateware.cocotb_bench`
so that ``unlayered verify`` can run them from an installed package;
:func:`unlayered.gateware.verify.verify_cases` writes the bench file (cases, expected results of
the reference simulator) and runs that module. This module re-exports the test for runners
pointed at ``tests/cocotb``.
"""

from unlayered.gateware.cocotb_bench import run_cases

__all__ = ["run_cases"]
