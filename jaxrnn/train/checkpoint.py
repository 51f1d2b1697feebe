"""Checkpoints with orbax-checkpoint: atomic (written to a temporary directory, then renamed), checksummed, last ``k``
kept.

A checkpoint ``<run_dir>/checkpoints/<step>`` counts as complete only once its manifest
``<step>/jaxrnn_manifest.json`` (the SHA-256 and size of every file orbax wrote) exists; it is written last,
atomically. So a process killed at any point of a save leaves either the previous checkpoints (orbax's temporary
directory or a step without a manifest is ignored, and removed by the next save) or a complete new one. Restoring
re-hashes every file and raises :class:`CheckpointError` on a missing, truncated or altered file: orbax alone loads
a flipped byte silently. Old checkpoints are deleted only after the new manifest is written, and a failed write
(``OSError``, e.g. ``ENOSPC``) raises :class:`CheckpointError` leaving the previous checkpoints intact.

Checkpoints are orbax's OCDBT/Zarr array files plus JSON metadata: loading one never executes code (no pickle).
orbax is imported lazily, so ``import jaxrnn`` does not need it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
from typing import Any, Optional

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxrnn import _optional

MANIFEST = "jaxrnn_manifest.json"
EXTRA = "jaxrnn_extra.json"  # host-side loop state saved with a checkpoint (covered by the manifest)
_FORMAT = "jaxrnn-checkpoint-manifest/1"


class CheckpointError(OSError):
  """A checkpoint cannot be written, or what was read back is not what was written (corrupted, truncated)."""


def _sha256(path: pathlib.Path) -> str:
  h = hashlib.sha256()
  with path.open("rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def _files(step_dir: pathlib.Path) -> dict:
  return {p.relative_to(step_dir).as_posix(): p for p in sorted(step_dir.rglob("*"))
          if p.is_file() and p.name != MANIFEST}


def _barrier(name: str) -> None:
  """All processes of a multi-process run wait here (a no-op in a single process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def write_manifest(step_dir: pathlib.Path, step: int) -> None:
  """Writes ``step_dir/MANIFEST`` (SHA-256 and size of every file), atomically: temporary file, fsync, rename."""
  files = {rel: {"sha256": _sha256(p), "size": p.stat().st_size} for rel, p in _files(step_dir).items()}
  tmp = step_dir / (MANIFEST + ".tmp")
  with tmp.open("w") as f:
    json.dump({"format": _FORMAT, "step": int(step), "files": files}, f, indent=1, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  tmp.replace(step_dir / MANIFEST)


def verify_manifest(step_dir: pathlib.Path) -> None:
  """Raises :class:`CheckpointError` unless every file listed in the manifest is present with its size and hash."""
  path = step_dir / MANIFEST
  try:
    manifest = json.loads(path.read_text())
    files = manifest["files"]
    if manifest.get("format") != _FORMAT or not isinstance(files, dict):
      raise ValueError(f"unknown manifest format {manifest.get('format')!r}")
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise CheckpointError(f"checkpoint {step_dir} has an unreadable manifest {MANIFEST} ({e}); delete the "
                          f"directory to resume from an earlier checkpoint") from None
  for rel, want in sorted(files.items()):
    p = step_dir / rel
    problem = None
    if not p.is_file():
      problem = "is missing"
    elif p.stat().st_size != want["size"]:
      problem = f"has {p.stat().st_size} bytes, the manifest says {want['size']} (truncated or overwritten)"
    elif _sha256(p) != want["sha256"]:
      problem = "does not match its SHA-256 in the manifest (corrupted)"
    if problem:
      raise CheckpointError(f"checkpoint {step_dir} is damaged: {rel} {problem}; refusing to load it (delete the "
                            f"directory to resume from an earlier checkpoint)")


class Checkpointer:
  """Saves and restores a train-state pytree under ``<run_dir>/checkpoints/<step>``."""

  def __init__(self, run_dir: str | pathlib.Path, keep: int):
    try:
      import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top (optional and slow to import)
    except ImportError as e:
      raise _optional.missing("jaxrnn.train's checkpoints", "orbax-checkpoint", "train") from e

    self._ocp = ocp
    self._keep = int(keep)
    self.directory = pathlib.Path(run_dir).resolve() / "checkpoints"
    # max_to_keep=None: old checkpoints are deleted by `save` only after the new one's manifest is written.
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=None, create=True, enable_async_checkpointing=False))

  def _step_dir(self, step: int) -> pathlib.Path:
    return self.directory / str(int(step))

  def all_steps(self) -> list:
    """The steps of the complete checkpoints (with a manifest), oldest first."""
    return sorted(s for s in self._manager.all_steps() if (self._step_dir(s) / MANIFEST).is_file())

  def latest_step(self) -> Optional[int]:
    """The step of the newest complete checkpoint, or ``None``."""
    steps = self.all_steps()
    return steps[-1] if steps else None

  def save(self, step: int, state: Any, extra: Optional[dict] = None) -> None:
    """Writes ``state`` as checkpoint ``step`` (blocking; a partial write is never visible as a checkpoint).

    ``extra`` (JSON) is written beside orbax's files, before the manifest that covers it: :meth:`extra` reads it
    back with the checkpoint (the loop's partial train-loss window).

    Raises:
      CheckpointError: the write failed (e.g. the disk is full); the earlier checkpoints are untouched.
    """
    step = int(step)
    previous = self.latest_step()
    try:
      if step in self._manager.all_steps():  # an incomplete leftover of a killed run (or a re-save): replace it
        self._manager.delete(step)
      self._manager.save(step, args=self._ocp.args.StandardSave(state), force=True)
      self._manager.wait_until_finished()
      if jax.process_index() == 0:  # one writer (several processes share the directory), then all wait for it
        if extra is not None:
          (self._step_dir(step) / EXTRA).write_text(json.dumps(extra))
        write_manifest(self._step_dir(step), step)
      _barrier(f"jaxrnn_manifest_{step}")
    except OSError as e:
      self._discard_incomplete(step)
      kept = f"the previous checkpoint (step {previous}) is intact" if previous is not None else "no checkpoint"
      raise CheckpointError(e.errno, f"writing checkpoint step {step} to {self.directory} failed: {e}; "
                            f"{kept}") from e
    complete = self.all_steps()
    stale = [s for s in self._manager.all_steps() if s not in complete[-self._keep:]]
    for s in stale:
      self._manager.delete(s)
    if jax.process_index() == 0:
      for p in self.directory.glob("*.orbax-checkpoint-tmp*"):  # left by a process killed mid-save (saves are
        shutil.rmtree(p, ignore_errors=True)                     # synchronous: none is in flight now)

  def _discard_incomplete(self, step: int) -> None:
    """Best-effort removal of what a failed save of ``step`` left behind (its directory and orbax's tmp dirs)."""
    try:
      self._manager.reload()
      if step in self._manager.all_steps() and not (self._step_dir(step) / MANIFEST).is_file():
        self._manager.delete(step)
    except Exception:  # pylint: disable=broad-except (cleanup must not mask the original error)
      pass
    for p in self.directory.glob(f"{step}.orbax-checkpoint-tmp*"):
      shutil.rmtree(p, ignore_errors=True)
    if self._step_dir(step).is_dir() and not (self._step_dir(step) / MANIFEST).is_file():
      shutil.rmtree(self._step_dir(step), ignore_errors=True)

  def restore(self, target: Any, step: Optional[int] = None) -> Any:
    """Restores checkpoint ``step`` (default: the latest) into the structure, shapes and dtypes of ``target``.

    Arrays are restored with the shardings of ``target``'s arrays (on any mesh, whatever mesh saved them); an
    uncommitted target array (one device, e.g. ``init_state()``'s) gives an uncommitted one.

    Raises:
      FileNotFoundError: there is no complete checkpoint (or none at ``step``).
      CheckpointError: the checkpoint's files do not match its manifest (corrupted or truncated).
    """
    step = self.latest_step() if step is None else int(step)
    if step is None:
      raise FileNotFoundError(f"no complete checkpoint to restore in {self.directory}")
    step_dir = self._step_dir(step)
    if not (step_dir / MANIFEST).is_file():
      raise FileNotFoundError(f"{step_dir} is not a complete checkpoint (no {MANIFEST}); complete ones: "
                              f"{self.all_steps()}")
    verify_manifest(step_dir)
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), target)
    try:
      restored = self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
    except (ValueError, TypeError, KeyError):
      raise
    except Exception as e:  # tensorstore's decode errors are plain Exceptions with a long spec dump
      raise CheckpointError(f"checkpoint {step_dir} passed its checksums but could not be read: "
                            f"{str(e).splitlines()[0][:300]}") from e
    # orbax returns arrays committed to their device; where the target's leaf is uncommitted (a fresh
    # `init_state()` on one device), so is the restored one: a jitted function called with a fresh or trained
    # state is then not compiled again for a restored one.
    return jax.tree_util.tree_map(
        lambda r, x: jax.device_put(np.asarray(r))
        if isinstance(x, jax.Array) and not x.committed and not jax.numpy.issubdtype(x.dtype, jax.dtypes.extended)
        else r,
        restored, target)

  def extra(self, step: int) -> dict:
    """The ``extra`` saved with complete checkpoint ``step`` (``{}`` if none); checked against its manifest."""
    step_dir = self._step_dir(step)
    verify_manifest(step_dir)
    path = step_dir / EXTRA
    return json.loads(path.read_text()) if path.is_file() else {}

  def close(self) -> None:
    self._manager.close()
