"""Microbenchmarks: gradflow against numpy and PyTorch on identical inputs.

Run from the repository root: ``python -m bench --help``. Modules: ``harness`` (cases, timing,
agreement checks), ``contenders`` (who runs: gradflow / numpy / torch on cpu / cuda),
``machine`` (what ran it), one module per suite, ``report`` (table, JSON, plot) and ``cli``.
"""
