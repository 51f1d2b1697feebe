"""jaxrnn.interop.keras: exact parity with Keras 3 (JAX backend) LSTM/GRU/SimpleRNN/Bidirectional, stacks, masks."""

import os

import jax
import numpy as np
import pytest

import jaxrnn

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
  pytest.skip("the parity tests run Keras on its JAX backend (KERAS_BACKEND=jax)", allow_module_level=True)
from jaxrnn.interop import keras as jkeras  # noqa: E402  pylint: disable=g-import-not-at-top

pytestmark = pytest.mark.usefixtures("quick_compiles")  # a few tiny programs


@pytest.fixture(autouse=True, scope="module")
def _keras_broadcasts():
  """Keras's own layers broadcast ranks implicitly (a bias [H] against [B, H]); the suite's strict mode would stop
  them, so this module allows it (jaxrnn's code paths are checked strictly everywhere else)."""
  with jax.numpy_rank_promotion("allow"):
    yield

B, T, F, H = 2, 5, 3, 4
TOL = 1e-5


def _randomize(layer, seed):
  """Every weight (biases included) random, so that no block or bias can be misplaced unnoticed."""
  rng = np.random.default_rng(seed)
  layer.set_weights([0.5 * rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()])


LAYERS = {
    "lstm": lambda **kw: keras.layers.LSTM(H, **kw),
    "gru": lambda **kw: keras.layers.GRU(H, **kw),
    "gru_reset_before": lambda **kw: keras.layers.GRU(H, reset_after=False, **kw),
    "simple_rnn_relu": lambda **kw: keras.layers.SimpleRNN(H, activation="relu", **kw),
}


def test_layers_match_keras_and_round_trip():
  x = np.random.default_rng(0).standard_normal((B, T, F)).astype(np.float32)
  for i, (name, make) in enumerate(LAYERS.items()):
    layer = make(return_sequences=True, return_state=True)
    layer(x)
    _randomize(layer, i)
    out = layer(x)
    cell, params = jkeras.from_keras(layer)
    final, hs = jaxrnn.unroll(cell, params, None, x)
    np.testing.assert_allclose(hs, out[0], atol=TOL, err_msg=name)
    np.testing.assert_allclose(final.h, out[1], atol=TOL, err_msg=name)
    if name == "lstm":
      np.testing.assert_allclose(final.c, out[2], atol=TOL)
    (back,) = jkeras.to_keras(cell, params, F)                   # jaxrnn -> Keras -> jaxrnn is exact; Keras's
    jax.tree.map(np.testing.assert_array_equal, jkeras.from_keras(back)[1], params)  # GRU bias split is not kept


def test_bidirectional_stack_with_masking():
  x = np.random.default_rng(1).standard_normal((B, T, F)).astype(np.float32)
  x[1, 3:] = 0.0                                                   # sequence 1 has length 3
  model = keras.Sequential([keras.Input((T, F)), keras.layers.Masking(0.0),
                            keras.layers.Bidirectional(keras.layers.GRU(H, return_sequences=True)),
                            keras.layers.LSTM(H, return_sequences=True)])
  for j, l in enumerate(model.layers):
    if l.weights:
      _randomize(l, 10 + j)
  want = np.asarray(model(x))
  cell, params = jkeras.from_keras(model)
  lengths = jkeras.seq_lengths_from_mask(model.layers[0].compute_mask(x))
  np.testing.assert_array_equal(lengths, [T, 3])
  hs = jaxrnn.unroll(cell, params, None, x, seq_lengths=lengths)[1]
  valid = (np.arange(T)[None, :] < lengths[:, None])[..., None]
  np.testing.assert_allclose(hs, np.where(valid, want, 0.0), atol=TOL)
  # Back to Keras (a Bidirectional whose backward layer has go_backwards): from_keras of it is exact, so Keras
  # computes what was just checked.
  jax.tree.map(np.testing.assert_array_equal, jkeras.from_keras(jkeras.to_keras(cell, params, F))[1], params)


def test_errors():
  x = np.zeros((B, T, F), np.float32)
  backwards = keras.layers.LSTM(H, go_backwards=True)
  backwards(x)
  with pytest.raises(ValueError, match="go_backwards=True.*reverse=True"):
    jkeras.from_keras(backwards)
  odd = keras.layers.LSTM(H, activation="softplus")
  odd(x)
  with pytest.raises(ValueError, match="activation='softplus' has no jaxrnn equivalent"):
    jkeras.from_keras(odd)
  with pytest.raises(ValueError, match="not built"):
    jkeras.from_keras(keras.layers.GRU(H))
  with pytest.raises(ValueError, match="not a prefix"):
    jkeras.seq_lengths_from_mask(np.array([[True, False, True]]))
  with pytest.raises(ValueError, match="dropout have no Keras equivalent"):
    cell = jaxrnn.stack(jaxrnn.gru(H), jaxrnn.gru(H), dropout=0.1)
    jkeras.to_keras(cell, cell.init(jax.random.key(0), F), F)
