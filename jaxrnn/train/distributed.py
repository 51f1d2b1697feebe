"""Data-parallel training on many devices and many processes, with JAX's own runtime (no other comms layer).

The train step of :func:`jaxrnn.train.step.build` is jitted again with explicit shardings over a 1-D device mesh
``Mesh(devices, ("data",))``: every batch array is split along its batch axis (``PartitionSpec("data")``), the
params and the optimizer state are replicated (``PartitionSpec()``), and XLA inserts the gradient all-reduce.
Several processes (hosts) join with ``jax.distributed.initialize``; each runs the same program on the global mesh.

The global batch of step ``s`` is the one the single-device ``run.train_step`` draws (``task.batch`` with the key
``fold_in(key(seed), s)``). Each process draws only its rows of it, the rows its devices own (row ``r`` comes from
its own key, :func:`jaxrnn.train.tasks.batch_rows`), and places them with
``jax.make_array_from_process_local_data``; the dropout key is derived inside the step from the replicated step
counter and, with JAX's partitionable Threefry, gives the same mask as on one device. So a run on any number of
devices or processes computes what the single-device run computes, up to the order of floating-point sums.

>>> import jax
>>> from jaxrnn.train import config, distributed, step
>>> cfg = config.from_dict({"task": {"name": "adding", "seq_len": 3}, "model": {"cell": "irnn", "hidden_size": 2},
...                         "train": {"batch_size": 2, "steps": 2}})
>>> run = step.build(cfg)
>>> par = distributed.parallelize(run, distributed.make_mesh(1), force=True)
>>> state, loss = par.train_step(par.init_state(), run.task.data["train"])
>>> int(par.local(state.step)), par.mesh.shape["data"], par.is_main
(1, 1, True)
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxrnn.train import step as step_lib
from jaxrnn.train.config import ConfigError

AXIS = "data"  # the mesh axis the batch is split over


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None) -> None:
  """Joins this process to a multi-process run: ``jax.distributed.initialize`` with gloo collectives on CPU.

  Call it before anything else touches JAX's devices. With no arguments JAX detects the cluster (Cloud TPU pods,
  SLURM, Open MPI, Kubernetes); ``JAX_COORDINATOR_ADDRESS`` is read from the environment when
  ``coordinator_address`` is ``None``. Accelerators (GPU, TPU) use their own collectives; the CPU setting only
  matters for CPU-only runs (tests, laptops).

  Args:
    coordinator_address: ``host:port`` of process 0's coordinator service, the same on every process.
    num_processes: the number of processes.
    process_id: this process's index in ``[0, num_processes)``.
  """
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)


def shutdown() -> None:
  """Leaves a multi-process run: ``jax.distributed.shutdown`` on every process, which is a barrier, so process 0's
  coordination service outlives every other process's requests. Left to the interpreter's exit, process 0 may tear
  the service down while a peer's request is still pending, and gRPC then aborts it (``Check failed: queue.Pop() ==
  nullptr`` in ``DistributedRuntimeService::Shutdown``, exit -6, once in this project's CI after a complete run).
  Nothing in a single-process run."""
  if jax.process_count() > 1:
    jax.distributed.shutdown()


def make_mesh(data_parallel: int = 0) -> Mesh:
  """The 1-D ``("data",)`` mesh over ``data_parallel`` devices (0: all devices of all processes).

  Raises:
    ConfigError: more devices asked for than there are, or fewer than all devices on several processes.
  """
  n_all = jax.device_count()
  n = n_all if data_parallel == 0 else data_parallel
  if n > n_all:
    raise ConfigError(f"distributed.data_parallel = {data_parallel} but there are only {n_all} devices "
                      f"({jax.process_count()} process(es)); use 0 for all devices")
  if jax.process_count() > 1 and n != n_all:
    raise ConfigError(f"distributed.data_parallel = {data_parallel}: a run on {jax.process_count()} processes "
                      f"uses all {n_all} devices (0 or {n_all})")
  return jax.make_mesh((n,), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[:n])


def process_rows(sharding: NamedSharding, batch_size: int) -> np.ndarray:
  """The rows of a global ``[batch_size, ...]`` batch that this process's devices own under ``sharding``, in the
  order ``jax.make_array_from_process_local_data`` expects them (``int[rows]``)."""
  spans = set()
  for index in sharding.addressable_devices_indices_map((batch_size,)).values():
    assert index is not None  # None only for devices this process does not address
    spans.add(index[0].indices(batch_size)[:2])
  return np.concatenate([np.arange(a, b) for a, b in sorted(spans)])


class Parallel(NamedTuple):
  """How :func:`jaxrnn.train.loop.train` runs a :class:`jaxrnn.train.loop.Run` on a mesh.

  Fields:
    mesh: the ``("data",)`` mesh, or ``None`` (one device, one process: the plain jitted step).
    train_step: ``train_step(state, train_data) -> (state, loss)`` like ``Run.train_step``; ``state`` lives on
      the mesh (see ``init_state``) and ``loss`` is this process's copy of the global batch's mean loss.
    init_state: ``init_state() -> TrainState`` at step 0, replicated on the mesh (``Run.init_state`` jitted
      with output shardings: every device computes its copy, nothing is sent between processes).
    restore_target: ``restore_target() -> TrainState`` of ``jax.ShapeDtypeStruct`` with the mesh's shardings, what
      a checkpoint restores into (single device: ``init_state()``).
    local: ``local(tree) -> tree`` of this process's copies of replicated arrays (for evaluation, sampling).
    is_main: ``True`` on process 0, the one that writes metrics, plots and samples.
  """

  mesh: Optional[Mesh]
  train_step: Callable
  init_state: Callable
  restore_target: Callable
  local: Callable
  is_main: bool


def _identity(x):
  return x


def parallelize(run: step_lib.Run, mesh: Optional[Mesh] = None, *, force: bool = False) -> Parallel:
  """The data-parallel train step of ``run`` on ``mesh`` (default: ``make_mesh(cfg.distributed.data_parallel)``).

  On one device in one process this is ``run.train_step`` itself unless ``force``.

  Raises:
    ConfigError: ``train.batch_size`` is not a multiple of the mesh size.
  """
  mesh = make_mesh(run.cfg.distributed.data_parallel) if mesh is None else mesh
  if mesh.size == 1 and jax.process_count() == 1 and not force:
    return Parallel(None, run.train_step, run.init_state, run.init_state, _identity, True)
  return _parallelize(run, mesh)


def _parallelize(run, mesh: Mesh) -> Parallel:
  cfg = run.cfg
  is_main = jax.process_index() == 0
  n, bs = mesh.shape[AXIS], cfg.train.batch_size
  if bs % n:
    raise ConfigError(f"train.batch_size = {bs} must be a multiple of the {n} data-parallel devices "
                      f"(distributed.data_parallel = {cfg.distributed.data_parallel})")

  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(AXIS))
  state_shape = jax.eval_shape(run.init_state)
  state_sharding = jax.tree_util.tree_map(lambda _: replicated, state_shape)

  # The same train step as run.train_step, fed the batch instead of drawing it: built from a task whose `batch`
  # returns its `data` argument, so the loss, dropout, clipping and update code is shared, not copied.
  fed = step_lib.build(cfg, task=run.task._replace(batch=lambda data, key, batch_size: data))
  step = jax.jit(fed.train_step, in_shardings=(state_sharding, batch_sharding),
                 out_shardings=(state_sharding, replicated))

  _, train_key, _ = step_lib.run_keys(cfg.train.seed)
  rows = jnp.asarray(process_rows(batch_sharding, bs))

  @jax.jit
  def local_batch(data, step):
    # The key split of run.train_step; only this process's rows of its batch are drawn (see tasks.batch_rows).
    k_data, _ = jax.random.split(jax.random.fold_in(train_key, step))
    return run.task.rows(data, k_data, rows)

  shapes = []  # the global batch's shapes, found once

  def put_batch(data, rows_batch):
    if not shapes:
      key = jax.random.key(0)
      shapes.append(jax.tree_util.tree_map(lambda s: s.shape,
                                           jax.eval_shape(lambda d: run.task.batch(d, key, bs), data)))
    return jax.tree_util.tree_map(
        lambda x, shape: jax.make_array_from_process_local_data(batch_sharding, x, shape), rows_batch, shapes[0])

  def local(tree):
    return jax.tree_util.tree_map(lambda x: x.addressable_data(0), tree)

  # XLA:CPU's in-process collectives can deadlock when a step's all-reduce (inside the backward scan) overlaps
  # the asynchronous copy of the next rows to the simulated devices; on CPU the rows are waited for first.
  on_cpu = mesh.devices.flat[0].platform == "cpu"

  def train_step(state, data):
    rows_batch = local_batch(data, state.step.addressable_data(0))  # no host sync on accelerators
    if on_cpu:
      rows_batch = jax.block_until_ready(rows_batch)
    batch = put_batch(data, rows_batch)
    state, loss = step(state, batch)
    return state, loss.addressable_data(0)

  init_state = jax.jit(run.init_state, out_shardings=state_sharding)
  target = jax.tree_util.tree_map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), state_shape,
                                  state_sharding)
  return Parallel(mesh, train_step, init_state, lambda: target, local, is_main)
