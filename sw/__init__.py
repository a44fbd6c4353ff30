"""The training side and the tools: command-line interface, demo, (later) training and export.

Keep this package's ``__init__`` free of heavy imports (torch, numba): ``unlayered simulate``
imports :mod:`unlayered.sw.cli` and must not load torch. Modules that need torch import it
themselves, and the CLI imports them only inside the verbs that use them.
"""
