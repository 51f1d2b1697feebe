"""Checkpoints with orbax-checkpoint: atomic (written to a temporary directory, then renamed), last ``k`` kept.

orbax is imported lazily, so ``import jaxrnn`` does not need it.
"""

from __future__ import annotations

import pathlib
from typing import Any, Optional


class Checkpointer:
  """Saves and restores a train-state pytree under ``<run_dir>/checkpoints/<step>``."""

  def __init__(self, run_dir: str | pathlib.Path, keep: int):
    import orbax.checkpoint as ocp

    self._ocp = ocp
    directory = pathlib.Path(run_dir).resolve() / "checkpoints"
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False))

  def latest_step(self) -> Optional[int]:
    """The step of the newest complete checkpoint, or ``None``."""
    return self._manager.latest_step()

  def all_steps(self):
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any) -> None:
    """Writes ``state`` as checkpoint ``step`` (blocking; a partial write is never visible as a checkpoint)."""
    self._manager.save(int(step), args=self._ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def restore(self, target: Any, step: Optional[int] = None) -> Any:
    """Restores checkpoint ``step`` (default: the latest) into the structure, shapes and dtypes of ``target``.

    Arrays are restored with the shardings of ``target``'s arrays (on any mesh, whatever mesh saved them).
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError("no checkpoint to restore")
    import jax
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), target)
    return self._manager.restore(int(step), args=self._ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self._manager.close()
