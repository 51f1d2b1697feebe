"""The cuDNN route of :func:`jaxrnn.lstm` (``kernel="cudnn"``) against the JAX path.

On CPU: the route's layout, lengths and carries, with ``jax.experimental.rnn``'s own pure-JAX reference in cuDNN's
place; when the route fits a call, and that ``kernel=None`` never takes it off GPU. On a GPU (skipped elsewhere;
``benchmarks/gpu.py`` runs this module there): cuDNN itself, values and gradients, through ``jaxrnn.unroll`` with
lengths, reverse, batch shapes, stacks and bidirectional layers.
"""

import jax
import jax.experimental.rnn
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.kernels import choice
from jaxrnn.kernels import cudnn_lstm

pytestmark = pytest.mark.usefixtures("quick_compiles")

ON_GPU = jax.default_backend() == "gpu"
F32 = jnp.float32


def _setup(batch, num_steps=6, features=3, hidden=4, precision=None, seed=0):
  cell = jaxrnn.lstm(hidden, precision=precision)
  k = jax.random.split(jax.random.key(seed), 4)
  params = cell.init(k[0], features)
  params = params._replace(b=jax.random.normal(k[1], params.b.shape, F32))  # a bias that is not all zeros
  carry = jax.tree.map(lambda a: jax.random.normal(k[2], a.shape, F32), cell.initial_carry(params, batch))
  xs = jax.random.normal(k[3], (num_steps,) + batch + (features,), F32)  # time-major
  return cell, params, carry, xs


def _close(got, want, rtol, atol):
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


def test_route_equals_the_jax_path_with_the_reference_in_cudnns_place():
  """Batch axes flattened and restored, lengths (0 included: the initial carry back, zero outputs), values and
  gradients of params, carry and inputs."""
  cell, params, carry, xs = _setup((2, 2))
  lengths = jnp.array([[6, 0], [3, 1]])
  mask = jaxrnn.sequences.length_mask(lengths, xs.shape[0])

  def loss(run):
    def f(p, c, x):
      final, hs = run(p, c, x)
      return jnp.sum(jnp.sin(3 * hs)) + jnp.sum(final.h * final.c) + jnp.sum(final.c), (final, hs)
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))

  route = lambda p, c, x: cudnn_lstm.run(p, c, x, mask, None, lstm_fn=cudnn_lstm.reference)
  jax_path = lambda p, c, x: jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths, time_major=True, mode="step")
  with jax.default_matmul_precision("highest"):  # float32 products on a GPU too (its default is TF32)
    got = loss(route)(params, carry, xs)
    _close(got, loss(jax_path)(params, carry, xs), rtol=2e-5, atol=2e-6)
  (_, (final, hs)), _ = got
  np.testing.assert_array_equal(final.h[0, 1], carry.h[0, 1])  # length 0: the initial carry, zero outputs
  assert not np.any(np.asarray(hs[:, 0, 1])) and not np.any(np.asarray(hs[1:, 1, 1]))


def test_pack_is_cudnns_layout():
  """``pack`` gives what ``jax.experimental.rnn.unpack_lstm_weights`` reads back as PyTorch's matrices."""
  _, params, _, _ = _setup((1,))
  w_ih, w_hh, b_ih, b_hh = jax.experimental.rnn.unpack_lstm_weights(cudnn_lstm.pack(params), 3, 4, 1, False)
  np.testing.assert_array_equal(w_ih[0], params.w_i.T)
  np.testing.assert_array_equal(w_hh[0], params.w_h.T)
  np.testing.assert_array_equal(b_ih[0] + b_hh[0], params.b)
  no_bias = jaxrnn.lstm(4, use_bias=False).init(jax.random.key(0), 3)
  assert not np.any(np.asarray(cudnn_lstm.pack(no_bias)[-32:]))


def test_when_the_route_fits(monkeypatch):
  """Off GPU it never fits; on a GPU (stood in for here), float32, tanh/sigmoid, precision None/high/highest, no
  unroll or hoist=False, at least one step."""
  cell, params, carry, xs = _setup((2,))
  options = jaxrnn.RunOptions()
  fits = lambda **kw: cudnn_lstm.misfit(**{**dict(params=params, carry=carry, xs=xs, options=options,
                                                   standard_activations=True, dtype=None, precision=None), **kw})
  if not ON_GPU:
    assert "cuDNN runs on GPU" in fits()
    with pytest.raises(ValueError, match="kernel='cudnn' does not fit this call of lstm: cuDNN runs on GPU"):
      jaxrnn.unroll(cell, params, carry, xs, time_major=True, kernel="cudnn")
  monkeypatch.setattr(cudnn_lstm, "available", lambda: None)
  assert fits() is None and fits(precision="highest") is None and fits(dtype=F32) is None
  assert fits(options=jaxrnn.RunOptions(hoist=True)) is None
  assert "tanh and sigmoid only" in fits(standard_activations=False)
  assert "float32 only" in fits(xs=xs.astype(jnp.float64))
  assert "float32 only" in fits(params=jax.tree.map(lambda a: a.astype(jnp.bfloat16), params))
  assert "float32 only" in fits(dtype=jnp.bfloat16)
  assert "precision" in fits(precision="bfloat16")
  assert "options of the XLA loop" in fits(options=jaxrnn.RunOptions(unroll=2))
  assert "options of the XLA loop" in fits(options=jaxrnn.RunOptions(unroll=True))
  assert fits(options=jaxrnn.RunOptions(unroll=1)) is None
  assert "options of the XLA loop" in fits(options=jaxrnn.RunOptions(hoist=False))
  assert "at least one step" in fits(xs=xs[:0])


def test_default_takes_a_kernel_only_where_it_fits(monkeypatch):
  """``kernel=None`` takes the backend's default where the call fits it, else the JAX path; a named kernel raises
  where it does not fit; off GPU the LSTM never runs cuDNN, whatever the defaults say."""
  monkeypatch.setattr(choice, "DEFAULTS", {jax.default_backend(): {"lstm": "cudnn"}})
  assert choice.resolve(None, "lstm", "lstm", ("xla", "cudnn"), lambda k: None) == "cudnn"
  assert choice.resolve(None, "lstm", "lstm", ("xla", "cudnn"), lambda k: "no") == "xla"
  assert choice.resolve(None, "lstm", "gru", ("xla",), lambda k: None) == "xla"
  assert choice.resolve("xla", "lstm", "lstm", ("xla", "cudnn"), lambda k: None) == "xla"
  with pytest.raises(ValueError, match="kernel='cudnn' does not fit this call of lstm: no"):
    choice.resolve("cudnn", "lstm", "lstm", ("xla", "cudnn"), lambda k: "no")
  if not ON_GPU:
    cell, params, carry, xs = _setup((2,))
    program = str(jax.make_jaxpr(lambda p, c, x: jaxrnn.unroll(cell, p, c, x, time_major=True))(params, carry, xs))
    assert "rnn_fwd" not in program


@pytest.mark.parametrize("kind", ["lstm", "gru", "stack"])
def test_kernel_xla_runs_the_jax_path(kind):
  """``kernel="xla"`` names the JAX path of a cell whose sequence path has other kernels (it raised KeyError)."""
  cell = {"lstm": jaxrnn.lstm(4), "gru": jaxrnn.gru(4), "stack": jaxrnn.stack(jaxrnn.lstm(4), jaxrnn.gru(3))}[kind]
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 5, 3), F32)
  want = jaxrnn.unroll(cell, params, None, xs, mode="step")
  _close(jaxrnn.unroll(cell, params, None, xs, kernel="xla"), want, rtol=1e-5, atol=1e-6)
  _close(jaxrnn.unroll(cell, params, None, xs, kernel="xla", mode="sequence"), want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# On a GPU: cuDNN itself.

gpu_only = pytest.mark.skipif(not ON_GPU, reason="cuDNN runs on GPU only")


def _net(kind, precision):
  lstm = lambda h: jaxrnn.lstm(h, precision=precision)
  return {"lstm": lstm(5), "stack": jaxrnn.stack(lstm(5), lstm(4)),
          "bidirectional": jaxrnn.bidirectional(lstm(3), lstm(4))}[kind]


@gpu_only
@pytest.mark.parametrize("precision, rtol", [("highest", 1e-4), (None, 2e-2)], ids=["highest", "default"])
@pytest.mark.parametrize("kind, batch, reverse", [("lstm", (3,), False), ("lstm", (), True),
                                                  ("lstm", (2, 3), True), ("stack", (3,), False),
                                                  ("bidirectional", (3,), False)])
def test_kernel_cudnn_equals_the_jax_path(kind, batch, reverse, precision, rtol):
  net = _net(kind, precision)
  params = net.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), batch + (9, 3), F32)
  lengths = None if batch == () else jnp.array([9, 4, 0, 1, 9, 2][:int(np.prod(batch))]).reshape(batch)

  def loss(p, x, kernel):
    final, hs = jaxrnn.unroll(net, p, None, x, seq_lengths=lengths, reverse=reverse, kernel=kernel)
    return jnp.sum(jnp.sin(3 * hs)) + sum(jnp.sum(c) for c in jax.tree.leaves(final)), (final, hs)

  fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
  assert "rnn_fwd" in str(jax.make_jaxpr(fn, static_argnums=2)(params, xs, "cudnn"))  # cuDNN really runs
  got, want = fn(params, xs, "cudnn"), fn(params, xs, "xla")
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
    assert np.linalg.norm(g - w) <= rtol * max(np.linalg.norm(w), 1e-6), (np.abs(g - w).max(), kind)
  if lengths is not None:
    hs = got[0][1][1]
    assert not np.any(np.asarray(hs).reshape((-1,) + hs.shape[-2:])[np.asarray(lengths).reshape(-1) == 0])
