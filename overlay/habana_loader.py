"""Loads Habana's TensorFlow module where it is installed.

On a Gaudi machine `habana_frameworks.tensorflow` registers the HPU device
with TensorFlow and must be loaded before the graph is built.  Everywhere else
the scripts run on CPU or GPU as upstream does; the loader then says once that
it runs without Habana's module.  Either way it returns a description of the
devices TensorFlow will use, which the scripts log at start.
"""

import tensorflow as tf

_reported_missing = False


def load_habana_if_installed():
  """Loads Habana's module; returns False, silently, when it is not installed.

  Habana's `load_habana_module()` loads once per process; later calls return
  at once.  Besides registering the HPU, it first sets up the multi-node
  environment from the launcher's variables (which Gaudi of the host this
  rank drives, per-rank prefixes for the files the bridge writes) and
  Habana's synapse logger (HABANA_SYNAPSE_LOGGER), which is why Horovod runs
  call it before `hvd.init()` (see horovod_helpers.hvd_init).
  """
  try:
    import habana_frameworks.tensorflow as htf  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  htf.load_habana_module()
  return True


def describe_devices():
  """One line per device TensorFlow sees, e.g. "CPU: /physical_device:CPU:0"."""
  devices = tf.config.list_physical_devices()
  if not devices:
    return "(no devices)"
  return "\n".join("%s: %s" % (d.device_type, d.name) for d in devices)


def load_habana_module():
  """Loads Habana's TensorFlow module if present; returns the device list.

  Without Habana's software this logs, only on the first call, that it runs
  without it.
  """
  global _reported_missing
  if not load_habana_if_installed() and not _reported_missing:
    _reported_missing = True
    tf.compat.v1.logging.warning(
        "Habana TensorFlow module (habana_frameworks.tensorflow) not "
        "installed; running without it on the devices below.")
  return describe_devices()
