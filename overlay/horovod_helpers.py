"""Horovod, reached through one module so that the scripts can run without it.

The training scripts use Horovod through the global `hvd` object
(`hvd.DistributedOptimizer`, `hvd.BroadcastGlobalVariablesHook`, ...) and the
small functions below.  `horovod.tensorflow` is imported only when something
actually needs it, so a run without --use_horovod works where Horovod is not
installed at all.

Before `hvd_init()` has run, or when the job has a single process,
`horovod_enabled()` is False and `hvd_size()`, `hvd_rank()` and
`hvd_local_size()` answer 1, 0 and 1: the scripts take their single-process
paths unchanged.  Rank and size always come from Horovod itself, never from a
launcher's environment variables, so any MPI implementation (or Gloo) works.
"""

import importlib
import os

_LAUNCH_HINT = ("start one process per worker with `horovodrun -np N python "
                "SCRIPT ...` (or `mpirun -np N python SCRIPT ...`), "
                "or leave out --use_horovod")

# Variables one of the launchers sets in every process it starts: horovodrun
# (HOROVOD_RANK, with Gloo or MPI), Open MPI, MPICH/Intel MPI (PMI) and PMIx.
# They only tell whether a launcher started the process; rank and size are
# always Horovod's.
_LAUNCHER_VARIABLES = ("HOROVOD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                       "PMIX_RANK")


class HorovodUnavailableError(SystemExit):
  """--use_horovod was given but Horovod cannot be used.

  A SystemExit, so that a script stops with its one-line message instead of a
  traceback.
  """

  def __init__(self, reason):
    super(HorovodUnavailableError, self).__init__(
        "error: --use_horovod: %s; %s." % (reason, _LAUNCH_HINT))


def _horovod_module():
  """Imports horovod.tensorflow, or says in one line why it cannot."""
  try:
    return importlib.import_module("horovod.tensorflow")
  except ImportError as e:
    raise HorovodUnavailableError(
        "cannot import horovod.tensorflow (%s); install Horovod with "
        "TensorFlow support, e.g. HOROVOD_WITH_TENSORFLOW=1 pip install "
        "horovod" % e)


class _Hvd(object):
  """Stands for the `horovod.tensorflow` module, imported on first use."""

  def __getattr__(self, name):
    return getattr(_horovod_module(), name)


hvd = _Hvd()


def _initialized_module():
  """horovod.tensorflow if it is imported and initialised, else None."""
  import sys  # pylint: disable=g-import-not-at-top
  module = sys.modules.get("horovod.tensorflow")
  if module is None:
    return None
  try:
    return module if module.is_initialized() else None
  except ValueError:  # Horovod's native library not loaded yet.
    return None


def hvd_init():
  """Initialises Horovod for a run started by horovodrun or mpirun.

  Where Habana's TensorFlow module is installed it is loaded first, in
  Habana's order (its Horovod examples and helpers load it before
  `hvd.init()`): the multi-node environment, the synapse logger and the
  Habana module itself are set up before Horovod is imported and initialised,
  so that each rank has picked its Gaudi before Horovod starts (see
  habana_loader.load_habana_if_installed).  Elsewhere nothing changes.

  Raises HorovodUnavailableError (one line, exit status 1) when Horovod is
  not installed, fails to start, or the process was started without a
  launcher and so would silently train alone.
  """
  from albert.habana_loader import load_habana_if_installed  # pylint: disable=g-import-not-at-top
  load_habana_if_installed()
  module = _horovod_module()
  try:
    module.init()
  except Exception as e:  # pylint: disable=broad-except
    detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise HorovodUnavailableError("Horovod failed to initialise (%s)" % detail)
  if module.size() == 1 and not any(v in os.environ
                                    for v in _LAUNCHER_VARIABLES):
    raise HorovodUnavailableError(
        "this process was not started by horovodrun or mpirun")
  return module


def horovod_enabled():
  """True only when Horovod is initialised and the job has several workers."""
  module = _initialized_module()
  return module is not None and module.size() > 1


def hvd_size():
  """Number of workers; 1 when Horovod is not initialised."""
  module = _initialized_module()
  return module.size() if module is not None else 1


def hvd_rank():
  """This worker's global rank; 0 when Horovod is not initialised."""
  module = _initialized_module()
  return module.rank() if module is not None else 0


def hvd_local_size():
  """Number of workers on this host; 1 when Horovod is not initialised."""
  module = _initialized_module()
  return module.local_size() if module is not None else 1


def worker_output_dir(output_dir):
  """Where this worker writes its own files: output_dir for rank 0, else
  output_dir/<rank>.

  Only rank 0 writes checkpoints (see worker_run_config); a worker's own
  files, such as its performance log, go here so that no two workers write
  the same file.
  """
  rank = hvd_rank()
  return output_dir if rank == 0 else os.path.join(output_dir, str(rank))


def example_slice(num_examples, size, rank):
  """The [start, end) range of examples that worker `rank` of `size` trains on.

  Workers get contiguous slices whose lengths differ by at most one: the
  first `num_examples % size` ranks take one example more.  Every example
  belongs to exactly one slice.
  """
  if size < 1 or not 0 <= rank < size:
    raise ValueError("rank %d out of range for %d workers" % (rank, size))
  per_rank, remainder = divmod(num_examples, size)
  start = rank * per_rank + min(rank, remainder)
  end = start + per_rank + (1 if rank < remainder else 0)
  return start, end


def worker_run_config(run_config):
  """This worker's Estimator RunConfig: only rank 0 checkpoints.

  Every worker keeps the same model_dir (the script's output_dir).  Rank 0
  saves checkpoints and summaries there as configured; the other ranks save
  none, so a run killed at any moment leaves one consistent checkpoint
  state, rank 0's.  The other ranks still read that model_dir at start, so
  every worker makes the same decision whether training is already done;
  whatever they restore is then replaced by rank 0's variables, which
  hvd.BroadcastGlobalVariablesHook(0) sends after rank 0 has restored its
  checkpoint.  On several hosts, put output_dir on a file system they share:
  a rank that cannot see rank 0's checkpoints would not know that a rerun
  has nothing left to train.
  """
  if hvd_rank() == 0:
    return run_config
  return run_config.replace(save_checkpoints_steps=None,
                            save_checkpoints_secs=None,
                            save_summary_steps=None,
                            log_step_count_steps=None)
