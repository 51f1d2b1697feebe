"""jaxrnn.export: StableHLO programs (jax.export) of a step and of whole-sequence runs, reloaded without jaxrnn."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import export

pytest.importorskip("flatbuffers")  # jax.export's serialization
pytestmark = pytest.mark.usefixtures("quick_compiles")  # a few tiny programs

F, H = 3, 4

# Loads each exported program in a fresh interpreter that imports jax and numpy only, runs it, saves the outputs.
_LOADER = """
import sys, numpy as np, jax
jax.config.update("jax_enable_x64", True)
for name in sys.argv[1:]:
  run = jax.export.deserialize(bytearray(open(name + ".bin", "rb").read()))
  data = np.load(name + ".npz")
  args = [[data[k] for k in sorted(data) if k.startswith("p")]] + [data[k] for k in ("xs", "lengths") if k in data]
  carry, hs = run.call(*args)
  assert "jaxrnn" not in sys.modules
  np.savez(name + ".out.npz", hs=hs, *carry)
"""


def test_exported_runs_reload_without_jaxrnn(tmp_path):
  cases = {  # name: (cell, export_unroll keywords, whether lengths are passed)
      "reverse_lengths": (jaxrnn.lstm(H), {"reverse": True, "seq_lengths": True}),
      "bidirectional_stack_time_major": (
          jaxrnn.stack(jaxrnn.bidirectional(jaxrnn.gru(H), jaxrnn.lstm(H)), jaxrnn.gru(H)),
          {"seq_lengths": True, "time_major": True}),
  }
  xs = jax.random.normal(jax.random.key(1), (3, 6, F), jnp.float32)
  lengths = jnp.array([6, 2, 0], jnp.int32)
  want = {}
  for i, (name, (cell, kw)) in enumerate(cases.items()):
    params = cell.init(jax.random.key(i), F)
    shape = "t, b, 3" if kw.get("time_major") else "b, t, 3"        # any batch size and length
    exp = export.export_unroll(cell, params, shape, **kw)
    (tmp_path / f"{name}.bin").write_bytes(exp.serialize())
    x = jnp.swapaxes(xs, 0, 1) if kw.get("time_major") else xs
    arrays = {f"p{j:03d}": np.asarray(a) for j, a in enumerate(jax.tree.leaves(params))}
    arrays["xs"] = np.asarray(x)
    if kw.get("seq_lengths"):
      arrays["lengths"] = np.asarray(lengths)
    np.savez(tmp_path / f"{name}.npz", **arrays)
    want[name] = jaxrnn.unroll(cell, params, None, x, seq_lengths=lengths if kw.get("seq_lengths") else None,
                               reverse=kw.get("reverse", False), time_major=kw.get("time_major", False))
  subprocess.run([sys.executable, "-c", _LOADER, *cases], check=True, cwd=tmp_path)
  for name, (carry, hs) in want.items():
    got = np.load(tmp_path / f"{name}.out.npz")
    np.testing.assert_allclose(got["hs"], hs, atol=1e-6, err_msg=name)
    for j, leaf in enumerate(jax.tree.leaves(carry)):
      np.testing.assert_allclose(got[f"arr_{j}"], leaf, atol=1e-6, err_msg=name)


def test_exported_step_streams_like_unroll():
  cell = jaxrnn.gru(H)
  params = cell.init(jax.random.key(0), F)
  step = jax.export.deserialize(export.export_step(cell, params, "b, 3").serialize())
  xs = jax.random.normal(jax.random.key(1), (2, 4, F), jnp.float32)
  carry = jax.tree.leaves(cell.initial_carry(params, (2,)))
  hs = []
  for t in range(xs.shape[1]):                                     # one step per arriving input
    carry, h = step.call(jax.tree.leaves(params), carry, xs[:, t])
    hs.append(h)
  final, want = jaxrnn.unroll(cell, params, None, xs)
  np.testing.assert_allclose(jnp.stack(hs, axis=1), want, atol=1e-6)
  np.testing.assert_allclose(carry[0], final.h, atol=1e-6)


def test_errors():
  with pytest.raises(TypeError, match="jaxrnn.Cell"):
    export.export_unroll("lstm", None, (2, 5, 3))
  cell = jaxrnn.reset_on(jaxrnn.gru(H))
  with pytest.raises(ValueError, match="one input array"):
    export.export_unroll(cell, cell.init(jax.random.key(0), F), (2, 5, 3))
  with pytest.raises(ValueError, match="time axis"):
    export.export_unroll(jaxrnn.gru(H), jaxrnn.gru(H).init(jax.random.key(0), F), (3,))
