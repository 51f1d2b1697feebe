"""jaxrnn.interop.torch: exact parity with PyTorch's recurrent modules, round trips, carries, errors."""

import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.interop import (carry_from_torch, carry_to_torch, from_torch, to_torch, torch_forward, torch_module,
                            torch_spec)

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN"),
              pytest.mark.usefixtures("quick_compiles")]  # many tiny programs (conftest.quick_compiles)

I, H, P, T, B = 2, 3, 2, 5, 3
LENGTHS = np.array([5, 2, 4])
TOL = 1e-5


def jit(fn):
  """``jax.jit`` without XLA's backend optimisations: these tests compile ~50 tiny functions, run each a few times."""
  return jax.jit(fn, compiler_options={"xla_backend_optimization_level": 0})

KINDS = {
    "rnn_tanh": lambda **kw: torch.nn.RNN(I, H, nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: torch.nn.RNN(I, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: torch.nn.LSTM(I, H, **kw),
    "lstmp": lambda **kw: torch.nn.LSTM(I, H, proj_size=P, **kw),
    "gru": lambda **kw: torch.nn.GRU(I, H, **kw),
}


def n(t):
  return t.detach().numpy()


def assert_close(a, b, what):
  a, b = np.asarray(a), np.asarray(b)
  assert a.shape == b.shape, (what, a.shape, b.shape)
  err = np.abs(a - b).max()
  assert err <= TOL, f"{what}: max error {err}"


def assert_identical(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def torch_run(m, x, hx, lengths, batch_first):
  """PyTorch's output (padded with zeros) and final state, fixed-length or packed."""
  with torch.no_grad():
    if lengths is None:
      return m(x, hx)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                                     enforce_sorted=False)
    out, h_n = m(packed, hx)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    return out, h_n


def flat_state(h_n):
  return h_n if isinstance(h_n, tuple) else (h_n,)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("kind", list(KINDS))
def test_module_parity_and_round_trip(kind, num_layers, bidirectional, bias):
  torch.manual_seed(0)
  m = KINDS[kind](num_layers=num_layers, bidirectional=bidirectional, bias=bias).eval()
  m_bf = KINDS[kind](num_layers=num_layers, bidirectional=bidirectional, bias=bias, batch_first=True).eval()
  m_bf.load_state_dict(m.state_dict())
  cell, params = from_torch(m)
  cell_bf, params_bf = from_torch(m_bf)
  assert_identical(params, params_bf)
  assert torch_spec(cell_bf) == torch_spec(cell)._replace(batch_first=True)
  D = 2 if bidirectional else 1
  h_out = P if kind == "lstmp" else H

  # One compile per structure: the time-major cell, reused for batch_first (transposed here) and packed inputs.
  @jit
  def run(params, xs, hx, lengths):
    return torch_forward(cell, params, xs, hx, seq_lengths=lengths)

  xs = torch.randn(T, B, I)
  h0 = torch.randn(num_layers * D, B, h_out)
  hx = (h0, torch.randn(num_layers * D, B, H)) if kind.startswith("lstm") else h0
  hx_j = jax.tree.map(lambda t: jnp.asarray(n(t)), hx)
  for batch_first in (False, True):
    mod = m_bf if batch_first else m
    x_in = xs.transpose(0, 1) if batch_first else xs
    for lengths in (None, LENGTHS):
      out_t, state_t = torch_run(mod, x_in, hx, lengths, batch_first)
      out_t = n(out_t.transpose(0, 1) if batch_first else out_t)
      # Fixed lengths: seq_lengths=None (unroll's flip path) for one layer; full lengths for three, to share the
      # compiled function (the layers of a stack run the same code as one layer).
      if lengths is None:
        jl = None if num_layers == 1 else jnp.asarray(np.full(B, T, LENGTHS.dtype))
      else:
        jl = jnp.asarray(lengths)
      out, state = run(params, jnp.asarray(n(xs)), hx_j, jl)
      what = f"batch_first={batch_first} lengths={lengths}"
      assert out.shape == (T, B, D * h_out)
      assert_close(out, out_t, f"output, {what}")
      for a, b in zip(flat_state(state), flat_state(state_t)):
        assert_close(a, n(b), f"final state, {what}")

  # Carries: PyTorch's layout <-> jaxrnn's, as torch tensors.
  carry0 = carry_from_torch(cell, hx)
  back = carry_to_torch(cell, carry0)
  for a, b in zip(flat_state(back), flat_state(hx)):
    assert isinstance(a, torch.Tensor)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
  assert_identical(carry_from_torch(cell, back), carry0)

  # jaxrnn -> torch -> jaxrnn is exact, from torch's params and from jaxrnn's own initialisation.
  fresh = KINDS[kind](num_layers=num_layers, bidirectional=bidirectional, bias=bias)
  fresh.load_state_dict(to_torch(cell, params))
  cell2, params2 = from_torch(fresh)
  assert cell2.name == cell.name
  assert_identical(params2, params)
  rng = np.random.default_rng(1)  # any params of this structure (cell.init would trace the stack: slow)
  own = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape).astype(a.dtype)), params)
  assert_identical(from_torch(to_torch(cell, own))[1], own)
  # torch -> jaxrnn -> torch: exact up to the split of the two biases.
  sd, sd2 = m.state_dict(), to_torch(cell, params)
  assert list(sd2) == list(sd)
  for k in sd:
    if k.startswith("bias_ih"):
      b_hh = k.replace("bias_ih", "bias_hh")
      if kind == "gru":
        np.testing.assert_allclose(n(sd2[k] + sd2[b_hh])[:2 * H], n(sd[k] + sd[b_hh])[:2 * H], atol=1e-6)
        np.testing.assert_array_equal(n(sd2[k])[2 * H:], n(sd[k])[2 * H:])
        np.testing.assert_array_equal(n(sd2[b_hh])[2 * H:], n(sd[b_hh])[2 * H:])
      else:
        np.testing.assert_allclose(n(sd2[k] + sd2[b_hh]), n(sd[k] + sd[b_hh]), atol=1e-6)
    elif not k.startswith("bias_hh"):
      np.testing.assert_array_equal(n(sd2[k]), n(sd[k]))


def test_torch_forward_batch_first_unbatched_numpy_state_dict():
  torch.manual_seed(1)
  m = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True).eval()
  sd = {k: n(v) for k, v in m.state_dict().items()}
  cell, params = from_torch(sd, batch_first=True)                  # NumPy arrays; batch_first is recorded
  assert torch_spec(cell).batch_first
  run = jit(lambda p, x: torch_forward(cell, p, x))                # defaults: zero state, the cell's layout
  for x in (torch.randn(B, T, I), torch.randn(T, I)):              # batched [B, T, I] and unbatched [T, I]
    out, (h_n, c_n) = run(params, jnp.asarray(n(x)))
    with torch.no_grad():
      out_t, (h_t, c_t) = m(x)
    assert_close(out, n(out_t), f"output {tuple(x.shape)}")
    assert_close(h_n, n(h_t), f"h_n {tuple(x.shape)}")
    assert_close(c_n, n(c_t), f"c_n {tuple(x.shape)}")


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ["RNNCell-tanh", "RNNCell-relu", "LSTMCell", "GRUCell"])
def test_cell_modules(kind, bias):
  torch.manual_seed(2)
  name, _, nonlin = kind.partition("-")
  kw = {"nonlinearity": nonlin} if nonlin else {}
  m = getattr(torch.nn, name)(I, H, bias=bias, **kw)
  cell, params = from_torch(m)
  assert cell.name.startswith(f"torch.nn.{name}(")
  assert not isinstance(params, tuple) or hasattr(params, "_fields")
  x = torch.randn(B, I)
  hx = (torch.randn(B, H), torch.randn(B, H)) if name == "LSTMCell" else torch.randn(B, H)
  with torch.no_grad():
    want = m(x, hx)
  got = torch_forward(cell, params, jnp.asarray(n(x)), hx)
  for a, b in zip(flat_state(got), flat_state(want)):
    assert_close(a, n(b), kind)
  carry, h = cell.step(params, carry_from_torch(cell, hx), jnp.asarray(n(x)))
  assert_close(h, n(flat_state(want)[0]), "step output")
  # Round trip, and the same weights through the plain jaxrnn cell exported with mode=.
  fresh = getattr(torch.nn, name)(I, H, bias=bias, **kw)
  fresh.load_state_dict(to_torch(cell, params))
  assert_identical(from_torch(fresh)[1], params)
  plain = {"RNNCell": jaxrnn.simple_rnn(H, activation=nonlin or "tanh", use_bias=bias),
           "LSTMCell": jaxrnn.lstm(H, use_bias=bias), "GRUCell": jaxrnn.gru(H, use_bias=bias)}[name]
  sd = to_torch(plain, params, mode=name)
  assert sorted(sd) == sorted(m.state_dict())
  # A *Cell from from_torch is one layer: a stack of it is the multi-layer module.
  assert torch_spec(jaxrnn.stack(cell, name="encoder"), (params,)) == jaxrnn.interop.TorchSpec(
      mode=name[:-4], input_size=I, hidden_size=H, bias=bias, nonlinearity=nonlin or "tanh")
  assert_identical(from_torch(sd, nonlinearity=nonlin or None)[1], params)


def test_plain_jaxrnn_cells_export():
  """Plain jaxrnn cells and stacks of them export to the module PyTorch would build, and compute the same."""
  torch.manual_seed(3)
  lstmp_bi = jaxrnn.bidirectional(jaxrnn.lstmp(H, P), jaxrnn.lstmp(H, P))
  cases = [  # (plain jaxrnn cell, a torch module with params of the same structure, its repr)
      (jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.lstm(H)), torch.nn.LSTM(I, H, 2), "LSTM(2, 3, num_layers=2)"),
      (jaxrnn.bidirectional(jaxrnn.gru(H), jaxrnn.gru(H)), torch.nn.GRU(I, H, bidirectional=True),
       "GRU(2, 3, bidirectional=True)"),
      (jaxrnn.simple_rnn(H, activation="relu", use_bias=False), torch.nn.RNN(I, H, nonlinearity="relu", bias=False),
       "RNN(2, 3, bias=False)"),
      (jaxrnn.irnn(H), torch.nn.RNN(I, H, nonlinearity="relu"), "RNN(2, 3)"),   # an IRNN is a relu RNN
      (jaxrnn.stack(lstmp_bi, lstmp_bi), torch.nn.LSTM(I, H, 2, bidirectional=True, proj_size=P),
       "LSTM(2, 3, proj_size=2, num_layers=2, bidirectional=True)"),
  ]
  x = torch.randn(T, B, I)
  for cell, ref, rep in cases:
    params = from_torch(ref)[1]
    if cell.config.factory != "stack":
      params = params[0]                                           # a bare layer, not a stack of one
    m = torch_module(cell, params)
    assert repr(m) == rep
    assert not isinstance(m, torch.nn.RNN) or m.nonlinearity == "relu"
    assert torch_spec(cell, params) == torch_spec(from_torch(ref)[0])
    with torch.no_grad():
      out_t, state_t = m(x)
    run = jit(lambda p, x, cell=cell: jaxrnn.unroll(cell, p, cell.initial_carry(p, (B,)), x, time_major=True))
    final, hs = run(params, jnp.asarray(n(x)))
    assert_close(hs, n(out_t), cell.name)
    for a, b in zip(flat_state(carry_to_torch(cell, final)), flat_state(state_t)):
      assert_close(n(a), n(b), cell.name)
    # Back again: from_torch gives the torch-named stack with identical numbers.
    for a, b in zip(jax.tree.leaves(from_torch(m)[1]), jax.tree.leaves(params)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_dropout_maps_both_ways():
  m = torch.nn.GRU(I, H, num_layers=2, dropout=0.1).eval()
  cell, params = from_torch(m)
  assert cell.config.cells[0].config.get("dropout") == 0.1 and "dropout=0.1" in cell.name
  x = torch.randn(T, B, I)
  out, _ = torch_forward(cell, params, jnp.asarray(n(x)))              # no key: eval() mode
  assert_close(out, n(m(x)[0]), "gru dropout eval")
  carry = cell.initial_carry(params, (B,), key=jax.random.key(0))      # a key: the inter-layer dropout runs
  assert not np.allclose(jaxrnn.unroll(cell, params, carry, jnp.asarray(n(x)), time_major=True)[1], out)
  stacked = jaxrnn.stack(jaxrnn.gru(H), jaxrnn.gru(H), dropout=0.3)
  sp = stacked.init(jax.random.key(1), I)
  exported = torch_module(stacked, sp)
  assert exported.dropout == 0.3 and exported.num_layers == 2
  assert_identical(from_torch(exported)[1], sp)
  assert sorted(to_torch(stacked, sp)) == sorted(m.state_dict())


def test_packed_parametrized_compiled_scripted_modules():
  m = torch.nn.LSTM(I, H, num_layers=2, batch_first=True)
  cell, params = from_torch(m)
  x = torch.randn(B, T, I)
  lengths = torch.tensor(LENGTHS)
  packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
  out_t, (h_t, c_t) = m(packed)
  out, (h_n, c_n) = torch_forward(cell, params, packed)
  assert_close(out, n(torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=True)[0]), "packed out")
  assert_close(h_n, n(h_t), "packed h_n")
  assert_close(c_n, n(c_t), "packed c_n")
  with pytest.raises(ValueError, match="seq_lengths must be None with a PackedSequence"):
    torch_forward(cell, params, packed, seq_lengths=LENGTHS)
  # Parametrized weights are read through the module: the effective weight, not the state_dict's pieces.
  wn = torch.nn.utils.parametrizations.weight_norm(torch.nn.LSTM(I, H), name="weight_hh_l0")
  with torch.no_grad():
    wn.parametrizations.weight_hh_l0.original0.mul_(2.0)              # the norm g: changes the effective weight
  cell, params = from_torch(wn)
  np.testing.assert_allclose(np.asarray(params[0].w_h), n(wn.weight_hh_l0).T, rtol=1e-6)
  x_tm = x.transpose(0, 1)
  assert_close(torch_forward(cell, params, jnp.asarray(n(x_tm)))[0], n(wn(x_tm)[0]), "weight_norm")
  # torch.compile and torch.jit.script wrappers are unwrapped.
  for wrapped in (torch.compile(m), torch.jit.script(m)):
    c, p = from_torch(wrapped)
    assert c.name == from_torch(m)[0].name
    assert_identical(p, from_torch(m)[1])


def test_prefix_hint_and_float64_warning():
  sd = {f"encoder.rnn.{k}": v for k, v in torch.nn.LSTM(I, H, num_layers=3).state_dict().items()}
  with pytest.raises(ValueError, match=r"^state_dict keys start with 'encoder.rnn.' \(a model's state_dict\)") as e:
    from_torch(sd)
  assert len(str(e.value)) < 250
  with pytest.raises(ValueError, match=r"has: 'foo', 'bar'$"):
    from_torch({"foo": np.zeros(1, np.float32), "bar": np.zeros(1, np.float32)})
  m = torch.nn.GRU(I, H).double()
  with jax.enable_x64(False):
    with pytest.warns(UserWarning, match="float64 but JAX's x64 mode is off"):
      _, params = from_torch(m)
    assert params[0].w_i.dtype == jnp.float32
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert from_torch(m)[1][0].w_i.dtype == jnp.float64                # x64 on (the tests' default): kept


def test_errors():
  lstm_sd = {k: n(v) for k, v in torch.nn.LSTM(I, H, num_layers=2).state_dict().items()}
  gru_sd = {k: n(v) for k, v in torch.nn.GRU(I, H).state_dict().items()}
  with pytest.raises(TypeError, match="module_or_state_dict.*torch.nn.modules.linear.Linear"):
    from_torch(torch.nn.Linear(2, 3))
  with pytest.raises(ValueError, match=r"keys .* has: 'weight_xx_l0'$"):
    from_torch({**lstm_sd, "weight_xx_l0": lstm_sd["weight_ih_l0"]})
  with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l1'\]"):
    from_torch({k: v for k, v in lstm_sd.items() if k != "bias_hh_l1"})
  with pytest.raises(ValueError, match=r"state_dict\['weight_ih_l1'\] must have shape \(12, 3\).*got shape \(12, 4\)"):
    from_torch({**lstm_sd, "weight_ih_l1": np.zeros((12, 4), np.float32)})
  with pytest.raises(ValueError, match="proj_size.*weight_hr_l0.*nn.GRU"):
    from_torch({**gru_sd, "weight_hr_l0": np.zeros((2, H), np.float32)})
  with pytest.raises(ValueError, match="mode='LSTM' does not match.*nn.GRU"):
    from_torch(gru_sd, mode="LSTM")
  with pytest.raises(ValueError, match="nonlinearity.*nn.LSTM"):
    from_torch(lstm_sd, nonlinearity="relu")
  with pytest.raises(ValueError, match="nonlinearity must be one of"):
    from_torch({k: v for k, v in gru_sd.items()}, nonlinearity="gelu")
  with pytest.raises(ValueError, match="batch_first=True contradicts the module"):
    from_torch(torch.nn.GRU(I, H), batch_first=True)
  with pytest.raises(TypeError, match="floating-point"):
    from_torch({**gru_sd, "weight_ih_l0": np.zeros((9, I), np.int32)})
  z = lambda *shape: jnp.zeros(shape, jnp.float32)
  gru_p = jaxrnn.GRUParams(w_i=z(I, 3 * H), w_h=z(H, 3 * H), b=z(3 * H), b_hn=z(H))
  lstm_p = jaxrnn.LSTMParams(w_i=z(I, 4 * H), w_h=z(H, 4 * H), b=z(4 * H))
  with pytest.raises(ValueError, match="reset gate after"):
    to_torch(jaxrnn.gru(H, reset_after=False), gru_p)
  with pytest.raises(ValueError, match="same kind of layer"):
    to_torch(jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.gru(H)), (lstm_p, gru_p))
  lstm_p2 = lstm_p._replace(w_i=z(H, 4 * H))
  with pytest.raises(ValueError, match="skip_output"):
    to_torch(jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.lstm(H), skip_output=True), (lstm_p, lstm_p2))
  # The bias is declared (use_bias), not read from the first layer's params: both directions of a mismatch raise.
  no_bias = jaxrnn.lstm(H, use_bias=False)
  with pytest.raises(ValueError, match=r"params\[1\].b must be None: torch.nn.LSTM\(.*bias=False"):
    to_torch(jaxrnn.stack(no_bias, no_bias), (lstm_p._replace(b=None), lstm_p2))
  with pytest.raises(ValueError, match=r"params\[0\].b must have shape \(12,\) for torch.nn.LSTM\(.*bias=True.*None"):
    to_torch(jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.lstm(H)), (lstm_p._replace(b=None), lstm_p2))
  with pytest.raises(ValueError, match="proj_size < hidden_size"):
    to_torch(jaxrnn.lstmp(H, H), jaxrnn.LSTMPParams(w_i=z(I, 4 * H), w_h=z(H, 4 * H), b=None, w_r=z(H, H)))
  with pytest.raises(TypeError, match=r"params must be a LSTMPParams"):
    to_torch(jaxrnn.lstmp(H, P), lstm_p)
  cell, params = from_torch(lstm_sd)
  with pytest.raises(ValueError, match=r"params\[1\].w_i must have shape \(3, 12\).*got shape \(2, 12\)"):
    to_torch(cell, (params[0], params[0]))
  with pytest.raises(TypeError, match=r"params must be a tuple of 2 layer params"):
    to_torch(cell, params[0])
  with pytest.raises(ValueError, match="mode='GRUCell' cannot hold"):
    to_torch(cell, params, mode="GRUCell")
  with pytest.raises(ValueError, match=r"hx\[0\] \(h\) must have shape \[num_layers \* num_directions = 2"):
    carry_from_torch(cell, (np.zeros((1, B, H), np.float32), np.zeros((1, B, H), np.float32)))
  with pytest.raises(TypeError, match=r"hx must be a pair \(h, c\)"):
    carry_from_torch(cell, np.zeros((2, B, H), np.float32))
  with pytest.raises(ValueError, match="cannot map cell 'dropout"):
    torch_spec(jaxrnn.dropout(jaxrnn.lstm(H), output_rate=0.1))


def test_factories_declare_their_structure():
  """Factories record the math-defining hyperparameters as plain values, sorted; wrappers declare nothing."""
  assert jaxrnn.lstm(H).config == jaxrnn.CellConfig(
      "lstm", (("activation", "tanh"), ("gate_activation", "sigmoid"), ("hidden_size", H), ("use_bias", True)))
  assert jaxrnn.gru(H, reset_after=False, use_bias=False).config == jaxrnn.CellConfig(
      "gru", (("activation", "tanh"), ("gate_activation", "sigmoid"), ("hidden_size", H), ("reset_after", False),
              ("use_bias", False)))
  assert jaxrnn.lstmp(H, P).config.get("proj_size") == P
  assert jaxrnn.simple_rnn(H, activation=lambda x: x).config.get("activation") == "custom"
  assert jaxrnn.irnn(H, scale=0.5).config == jaxrnn.CellConfig(
      "irnn", (("activation", "relu"), ("hidden_size", H), ("scale", 0.5), ("use_bias", True)))
  layers = (jaxrnn.lstm(H), jaxrnn.gru(H))
  st = jaxrnn.stack(*layers, dropout=0.25, skip_input=True, name="encoder")
  assert st.config == jaxrnn.CellConfig(
      "stack", (("dropout", 0.25), ("skip_input", True), ("skip_output", False)), layers)  # the layers as given
  bi = jaxrnn.bidirectional(*layers, merge=jnp.add)
  assert bi.config.factory == "bidirectional" and bi.config.get("merge") == "custom" and bi.config.cells == layers
  assert jaxrnn.bidirectional(*layers, merge=None).config.get("merge") is None
  for cell in (st, bi, *layers, jaxrnn.simple_rnn(H), jaxrnn.irnn(H), jaxrnn.lstmp(H, P)):
    names = [k for k, _ in cell.config.kwargs]
    assert names == sorted(names), cell.name
  inner = jaxrnn.lstm(H)
  wrappers = [jaxrnn.residual(inner), jaxrnn.dropout(inner, output_rate=0.1), jaxrnn.variational_dropout(inner),
              jaxrnn.zoneout(inner, 0.1), jaxrnn.with_projection(inner, 2), jaxrnn.with_input_transform(inner, 2),
              jaxrnn.learned_initial_carry(inner), jaxrnn.reset_on(inner), jaxrnn.lstm(H, variant="NOAF"),
              jaxrnn.coupled_lstm(H)]
  for cell in wrappers:  # never the inner cell's config: that would export the wrong model
    assert cell.config is None, cell.name


@pytest.mark.parametrize("structure", ["lstm", "stack", "bidirectional", "stack_of_bidirectional", "from_torch"])
def test_renamed_models_export_identically(structure):
  """The structure is declared data: a cell renamed (name=..., or _replace(name=...)) exports as before."""
  torch.manual_seed(4)
  lstmp_bi = lambda **kw: jaxrnn.bidirectional(jaxrnn.lstmp(H, P), jaxrnn.lstmp(H, P), **kw)
  cases = {  # plain cell, renamed cell, torch module with params of the same structure
      "lstm": (jaxrnn.lstm(H), jaxrnn.lstm(H)._replace(name="encoder"), torch.nn.LSTM(I, H)),
      "stack": (jaxrnn.stack(jaxrnn.gru(H), jaxrnn.gru(H)), jaxrnn.stack(jaxrnn.gru(H), jaxrnn.gru(H), name="encoder"),
                torch.nn.GRU(I, H, 2)),
      "bidirectional": (jaxrnn.bidirectional(jaxrnn.lstm(H), jaxrnn.lstm(H)),
                        jaxrnn.bidirectional(jaxrnn.lstm(H), jaxrnn.lstm(H), name="encoder"),
                        torch.nn.LSTM(I, H, bidirectional=True)),
      "stack_of_bidirectional": (jaxrnn.stack(lstmp_bi(), lstmp_bi()),
                                 jaxrnn.stack(lstmp_bi(name="lower"), lstmp_bi(name="upper"), name="encoder"),
                                 torch.nn.LSTM(I, H, 2, bidirectional=True, proj_size=P)),
  }
  if structure == "from_torch":
    m = torch.nn.GRU(I, H, 2, batch_first=True)
    plain = from_torch(m)[0]
    renamed, ref = plain._replace(name="encoder"), m
  else:
    plain, renamed, ref = cases[structure]
  params = from_torch(ref)[1]
  if plain.config.factory not in ("stack", "from_torch"):
    params = params[0]
  assert renamed.name == "encoder" and renamed.name != plain.name
  assert torch_spec(renamed) == torch_spec(plain)
  assert torch_spec(renamed, params) == torch_spec(plain, params) == torch_spec(from_torch(ref)[0])
  sd, sd_renamed = to_torch(plain, params), to_torch(renamed, params)
  assert list(sd_renamed) == list(sd) == list(ref.state_dict())
  for k in sd:
    torch.testing.assert_close(sd_renamed[k], sd[k], rtol=0, atol=0)
  assert repr(torch_module(renamed, params)) == repr(torch_module(plain, params)) == repr(ref)
  carry = jax.tree.map(jnp.ones_like, plain.initial_carry(params, (B,)))
  for a, b in zip(flat_state(carry_to_torch(renamed, carry)), flat_state(carry_to_torch(plain, carry))):
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_refused_with_clear_messages():
  """Cells no PyTorch module computes are refused with a message naming the cell and the reason; a name that
  looks like a supported cell fools nothing."""
  z = lambda *shape: jnp.zeros(shape, jnp.float32)
  lstm_p = jaxrnn.LSTMParams(w_i=z(I, 4 * H), w_h=z(H, 4 * H), b=z(4 * H))
  supported = "Supported: cells made by from_torch; jaxrnn's simple_rnn"
  refused = [  # (cell, params or None, message)
      (jaxrnn.lstm(H, activation=jnp.tanh), lstm_p,
       r"cell 'lstm' .*: it has a custom activation \(a callable\); PyTorch's nn.LSTM and nn.GRU use tanh and "
       "sigmoid"),
      (jaxrnn.gru(H, gate_activation="hard_sigmoid"), None, "it has gate_activation='hard_sigmoid'"),
      (jaxrnn.simple_rnn(H, activation=jax.nn.gelu), None,
       r"cell 'simple_rnn_gelu' .*a custom activation \(a callable\); nn.RNN's nonlinearity is 'tanh' or 'relu'"),
      (jaxrnn.simple_rnn(H, activation="identity"), None, "activation='identity'; nn.RNN's nonlinearity"),
      (jaxrnn.stack(jaxrnn.lstm(H, activation=lambda x: x), name="encoder"), None,
       "cell 'encoder' .*: layer 0 'lstm' has a custom activation"),
      # Wrappers that change the math declare no structure, whatever they are called.
      (jaxrnn.residual(jaxrnn.lstm(H), name="lstm"), lstm_p,
       r"cell 'lstm' .*: it has no declared structure \(its config is None\).*residual"),
      (jaxrnn.with_projection(jaxrnn.lstm(H), 2), None, "'with_projection.*it has no declared structure"),
      (jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.learned_initial_carry(jaxrnn.lstm(H))), None,
       r"layer 1 'learned_initial_carry\(lstm\)' has no declared structure"),
      (jaxrnn.lstm(H, variant="NOAF"), None, r"cell 'lstm_NOAF' .*: it has no declared structure.*lstm\(variant"),
      (jaxrnn.bidirectional(jaxrnn.lstm(H, variant="NP"), jaxrnn.lstm(H, variant="NP")), None,
       r"its fwd 'lstm_NP' has no declared structure"),
      # Hyperparameters no PyTorch module has.
      (jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.lstm(H), skip_input=True), None, r"stack\(skip_input=True\)"),
      (jaxrnn.bidirectional(jaxrnn.gru(H), jaxrnn.gru(H), merge="sum"), None,
       r"it has merge='sum'; PyTorch concatenates the directions"),
      (jaxrnn.bidirectional(jaxrnn.gru(H), jaxrnn.gru(H), merge=jnp.maximum), None, r"a custom merge \(a callable\)"),
      (jaxrnn.bidirectional(jaxrnn.gru(H), jaxrnn.gru(4)), None,
       r"same cell both ways, it has GRU\(hidden_size=3, bias=True\) forwards and GRU\(hidden_size=4"),
      (jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.lstm(4)), None, "same hidden_size, proj_size and bias in every layer"),
      (jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.bidirectional(jaxrnn.lstm(H), jaxrnn.lstm(H))), None,
       r"same kind of layer and the same directions in every layer, got \['LSTM', 'bidirectional LSTM'\]"),
      (jaxrnn.stack(jaxrnn.stack(jaxrnn.lstm(H))), None,
       r"layer 0 'stack\(lstm\)' is made by stack, which is not a layer of any PyTorch recurrent module"),
      (jaxrnn.stack(from_torch(torch.nn.GRU(I, H))[0]), None,
       r"layer 0 'torch.nn.GRU\(.*\)' is a whole torch.nn.GRU module \(from from_torch\), not one layer"),
  ]
  for cell, params, match in refused:
    with pytest.raises(ValueError, match=match) as e:
      torch_spec(cell)
    assert supported in str(e.value)
    if params is not None:
      for fn in (lambda: to_torch(cell, params), lambda: torch_module(cell, params),
                 lambda: carry_to_torch(cell, cell.initial_carry(params, (B,)))):
        with pytest.raises(ValueError, match=match):
          fn()
  with pytest.raises(TypeError, match="cell must be a jaxrnn.Cell, got str"):
    torch_spec("torch.nn.LSTM(input_size=2, hidden_size=3)")


def test_nothing_parses_cell_names():
  """Structure is declared (Cell.config), never parsed back out of Cell.name."""
  import pathlib
  root = pathlib.Path(jaxrnn.__file__).parent
  for path in sorted(root.rglob("*.py")):
    text = path.read_text()
    for needle in ("ast.parse", "literal_eval", "import ast", "_split_call"):
      assert needle not in text, f"{path.relative_to(root.parent)} has {needle!r}"


def test_no_torch_import_and_missing_torch(monkeypatch):
  # Nor any other optional dependency: `import jaxrnn` needs only jax and numpy.
  code = ("import sys, jaxrnn, jaxrnn.interop, jaxrnn.interop.torch; "
          "optional = {'torch', 'flax', 'optax', 'orbax', 'tqdm', 'matplotlib', 'chex'}; "
          "loaded = sorted(optional & {m.split('.')[0] for m in sys.modules}); assert not loaded, loaded")
  subprocess.run([sys.executable, "-c", code], check=True)
  sd = {k: n(v) for k, v in torch.nn.GRU(I, H).state_dict().items()}
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
  cell, params = from_torch(sd)                                     # NumPy state dicts need no torch
  with pytest.raises(ImportError, match=r"pip install 'jaxrnn\[torch\]'"):
    to_torch(cell, params)
