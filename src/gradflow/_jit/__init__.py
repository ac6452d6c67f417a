"""gf.jit: a function's backend calls recorded once and replayed (see :mod:`.jitted`)."""
