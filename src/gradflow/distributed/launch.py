"""Start a gradflow job under MPI with the settings a data-parallel run wants.

    python -m gradflow.distributed.launch -n 4 [--hostfile hosts] [--timeout 600] -- \\
        -m gradflow.train --distributed

runs ``mpiexec -n 4 [-f hosts] python -m mpi4py -m gradflow.train --distributed``.
``python -m mpi4py`` makes an uncaught exception on any rank print its traceback and abort
the whole job (non-zero exit) instead of leaving the other ranks waiting in a collective.
``--timeout`` sets ``MPIEXEC_TIMEOUT`` (MPICH's launcher kills the job after that many
seconds). The environment gets these defaults, each only where the user has not set it:

- ``OMP_NUM_THREADS=1``: one compute thread per rank (ranks are the parallelism);
- ``MPIR_CVAR_CH4_PROGRESS_THROTTLE=1`` when more ranks than cores share a machine: MPICH's
  busy-polling then sleeps briefly after a run of idle polls, leaving the cores to the ranks
  that compute.

``init_process_group`` applies the same defaults when it is the one to initialise MPI (a plain
``mpiexec -n 2 python script.py``); under ``python -m mpi4py`` MPI is initialised before any
gradflow code runs, which is why this launcher exists.
"""

import argparse
import os
import shutil
import sys


def ranks_on_this_machine(env):
    """How many ranks the launcher started on this machine (MPICH's Hydra says so in
    MPI_LOCALNRANKS; Open MPI in OMPI_COMM_WORLD_LOCAL_SIZE), or None."""
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        if env.get(name, "").isdigit():
            return int(env[name])
    return None


def mpi_defaults(local_ranks, cores=None):
    """MPICH's settings for ``local_ranks`` ranks on a machine with ``cores`` cores."""
    cores = cores or os.cpu_count() or 1
    if local_ranks is not None and local_ranks > cores:
        return {"MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1"}
    return {}


def apply_mpi_defaults(env):
    """Sets in ``env`` (where unset) the MPICH defaults for the ranks the launcher
    started on this machine."""
    for name, value in mpi_defaults(ranks_on_this_machine(env)).items():
        env.setdefault(name, value)


def find_mpiexec():
    """mpiexec from the MPICH wheel next to this Python, else from PATH, else None."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.access(here, os.X_OK) else shutil.which("mpiexec")


def command(nprocs, args, hostfile=None, mpiexec=None):
    """The mpiexec command line that runs ``python -m mpi4py ARGS`` on ``nprocs`` ranks."""
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise FileNotFoundError('no mpiexec found: pip install "gradflow[mpi]" installs MPICH\'s '
                                "(or put your MPI's mpiexec on PATH)")
    cmd = [mpiexec, "-n", str(nprocs)]
    if hostfile:
        cmd += ["-f", hostfile]
    return cmd + [sys.executable, "-m", "mpi4py", *args]


def environment(nprocs, timeout=None, hostfile=None, env=None):
    """A copy of ``env`` (default os.environ) with the defaults for ``nprocs`` ranks (all on
    this machine unless a hostfile spreads them) and MPIEXEC_TIMEOUT."""
    env = dict(os.environ if env is None else env)
    env.setdefault("OMP_NUM_THREADS", "1")
    for name, value in mpi_defaults(None if hostfile else nprocs).items():
        env.setdefault(name, value)
    if timeout is not None:
        env["MPIEXEC_TIMEOUT"] = str(int(timeout))
    return env


def main(argv=None):
    """The launcher's command line: parses ``argv`` and replaces this process with mpiexec
    running ``python -m mpi4py ARGS`` on the ranks, in the defaults' environment."""
    p = argparse.ArgumentParser(prog="python -m gradflow.distributed.launch",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--nprocs", type=int, required=True, help="number of ranks")
    p.add_argument("--hostfile", help="MPICH hostfile: one 'host[:ranks]' per line")
    p.add_argument("--timeout", type=int, help="MPIEXEC_TIMEOUT: kill the job after this many s")
    p.add_argument("args", nargs=argparse.REMAINDER,
                   help="what python -m mpi4py runs: a script and its arguments, or -m module ...")
    a = p.parse_args(argv)
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    if a.nprocs < 1 or not args:
        p.error("need -n N >= 1 and a program, e.g. -n 2 -- -m gradflow.train --distributed")
    try:
        cmd = command(a.nprocs, args, a.hostfile)
    except FileNotFoundError as e:
        p.error(str(e))
    os.execvpe(cmd[0], cmd, environment(a.nprocs, a.timeout, a.hostfile))


if __name__ == "__main__":
    main()
