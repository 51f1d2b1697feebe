"""jaxrnn.export.to_onnx: ONNX models of unroll (jax2onnx), run by onnxruntime, equal to jaxrnn.unroll."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import export

if os.environ.get("CI"):  # `make install` puts the converter in CI's venv: a broken install fails, never skips
  import jax2onnx  # noqa: F401
  import onnxruntime as ort
else:
  pytest.importorskip("jax2onnx")
  ort = pytest.importorskip("onnxruntime")

F, H = 3, 4

CASES = {  # name: (cell, to_onnx keywords)
    "lstm": (jaxrnn.lstm(H), {}),
    "gru_lengths": (jaxrnn.gru(H), {"seq_lengths": True}),
    "lstm_reversed_lengths": (jaxrnn.lstm(H), {"reverse": True, "seq_lengths": True}),
    "bidirectional_stack": (jaxrnn.stack(jaxrnn.bidirectional(jaxrnn.lstm(H), jaxrnn.gru(H)), jaxrnn.gru(H)),
                            {"seq_lengths": True}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnxruntime_equals_unroll(name):
  """A dynamic time dimension: one model runs two sequence lengths; hs and the final carry."""
  cell, kw = CASES[name]
  params = cell.init(jax.random.key(0), F)
  batch = 3
  model = export.to_onnx(cell, params, (batch, "t", F), **kw)
  session = ort.InferenceSession(model.SerializeToString())
  for steps in (6, 4):
    xs = np.asarray(jax.random.normal(jax.random.key(batch), (batch, steps, F), jnp.float32))
    lengths = np.array([steps, 0, steps - 1], np.int32)
    feeds = {session.get_inputs()[0].name: xs}
    if kw.get("seq_lengths"):
      feeds[session.get_inputs()[1].name] = lengths
    hs, *carry = session.run(None, feeds)
    want_carry, want_hs = jaxrnn.unroll(cell, params, None, xs, reverse=kw.get("reverse", False),
                                        seq_lengths=lengths if kw.get("seq_lengths") else None)
    np.testing.assert_allclose(hs, want_hs, rtol=1e-5, atol=1e-5)
    assert len(carry) == len(jax.tree.leaves(want_carry))
    for got, want in zip(carry, jax.tree.leaves(want_carry)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_what_cannot_convert_raises_clearly():
  """min_gru's parallel (associative) scan needs an interior pad ONNX lacks: a ValueError naming the cell and
  mode='step', whose scan of step converts."""
  cell = jaxrnn.min_gru(H)
  params = cell.init(jax.random.key(0), F)
  with pytest.raises(ValueError, match=r"to_onnx cannot convert min_gru.*mode='sequence'.*mode='step'"):
    export.to_onnx(cell, params, (2, 5, F), mode="sequence")
  model = export.to_onnx(cell, params, (2, 5, F), mode="step")
  session = ort.InferenceSession(model.SerializeToString())
  xs = np.ones((2, 5, F), np.float32)
  np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: xs})[0],
                             jaxrnn.unroll(cell, params, None, xs)[1], rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match=r"to_onnx needs a concrete batch shape .*got batch dimensions \('b',\)"):
    export.to_onnx(cell, params, ("b", 5, F), mode="step")
  with pytest.raises(ValueError, match="options.native=True cannot be exported"):
    export.to_onnx(jaxrnn.lstm(H), jaxrnn.lstm(H).init(jax.random.key(0), F), (2, 5, F),
                   options=jaxrnn.RunOptions(native=True))


def test_missing_converter_names_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "jax2onnx", None)
  with pytest.raises(ImportError, match=r"^jaxrnn.export.to_onnx needs jax2onnx: pip install 'jaxrnn\[onnx\]'$"):
    export.to_onnx(jaxrnn.lstm(H), None, (2, 5, F))
