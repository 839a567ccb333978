"""--num_accumulation_steps: N micro-batches make one update.

A batch too large for one device is trained as N micro-batches of
--train_batch_size each: create_optimizer adds their gradients into
accumulators and, on every N-th micro-batch, updates the variables with
their mean and advances the global step.  So the global step, the learning
rate schedule, checkpoints and --num_train_steps count updates, and an epoch
takes N times fewer of them.  With Horovod the mean is averaged over the
workers once per update, not once per micro-batch; clipping by global norm,
loss scaling (an overflow in any micro-batch makes the mean inf, which every
worker then skips) and the optimizer see only the update.  N = 1, the
default, builds the graph without accumulators, as before.

The accumulators and the micro-batch counter are local variables: they are
not in checkpoints, which are written after an update, when the
accumulators are empty.  Importing this module defines the flag.
"""

from absl import flags
from albert.horovod_helpers import hvd, hvd_size, horovod_enabled
import tensorflow as tf

flags.DEFINE_integer(
    "num_accumulation_steps", 1,
    "Micro-batches of train_batch_size per update: their gradients are "
    "summed and applied once, as one batch of num_accumulation_steps times "
    "the size (per worker). Steps and epochs count updates.", lower_bound=1)

FLAGS = flags.FLAGS


def accumulation_steps():
  """--num_accumulation_steps, or 1 where the flags are not parsed."""
  if not FLAGS.is_parsed():
    return 1
  return FLAGS.num_accumulation_steps


def effective_batch_size(micro_batch_size):
  """Examples in one update: micro-batch x accumulation steps x workers."""
  return micro_batch_size * accumulation_steps() * hvd_size()


def log_effective_batch_size(micro_batch_size):
  tf.compat.v1.logging.info(
      "  Effective batch size = %d (%d a micro-batch x %d accumulated x %d "
      "workers)", effective_batch_size(micro_batch_size), micro_batch_size,
      accumulation_steps(), hvd_size())
  if accumulation_steps() > 1:
    tf.compat.v1.logging.info(
        "  The global step advances once every %d micro-batches (TensorFlow's "
        "step counter warns, in the first steps, that it has not increased)",
        accumulation_steps())


def accumulate_gradients(grads, tvars, num_steps, update):
  """A train op that accumulates `grads` and updates every num_steps-th run.

  grads: one dense gradient (or None) per variable of tvars, of one
    micro-batch, not yet averaged over workers.
  update: builds the update from the mean gradients (a list like grads) and
    returns its op; called once, inside the branch that runs every
    num_steps-th micro-batch.
  """
  with tf.compat.v1.variable_scope("gradient_accumulation"):
    micro_step = tf.compat.v1.get_variable(
        "micro_step", shape=[], dtype=tf.int64, trainable=False,
        initializer=tf.compat.v1.zeros_initializer(),
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])
    accumulators = [
        None if grad is None else tf.compat.v1.get_variable(
            var.op.name, shape=var.shape, dtype=grad.dtype, trainable=False,
            initializer=tf.compat.v1.zeros_initializer(),
            collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])
        for grad, var in zip(grads, tvars)]
  present = [acc for acc in accumulators if acc is not None]
  adds = [acc.assign_add(grad) for acc, grad in zip(accumulators, grads)
          if acc is not None]
  with tf.control_dependencies(adds):
    count = micro_step.assign_add(1)

  def apply_mean():
    with tf.control_dependencies([count]):
      means = [None if acc is None else acc.read_value() / num_steps
               for acc in accumulators]
    if horovod_enabled():
      means = [None if mean is None else hvd.allreduce(mean, op=hvd.Average)
               for mean in means]
    with tf.control_dependencies([update(means)]):
      return tf.group(*[acc.assign(tf.zeros_like(acc)) for acc in present])

  return tf.cond(tf.equal(count % num_steps, 0), apply_mean, tf.no_op)
