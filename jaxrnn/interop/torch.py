r"""Exact import and export of PyTorch's recurrent weights: ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their cells.

:func:`from_torch` turns a module (or its ``state_dict``) into a jaxrnn ``(cell, params)``; :func:`to_torch` turns
a jaxrnn cell and its params into a ``state_dict`` that ``module.load_state_dict`` accepts. torch is an optional
dependency (``pip install 'jaxrnn[torch]'``): it is imported only inside the functions that need it, and a
``state_dict`` of NumPy arrays converts without it.

What the cell is. ``nn.RNN``/``nn.LSTM``/``nn.GRU`` become a :func:`jaxrnn.stack` of ``num_layers`` layers
(always a stack, even of one layer, so ``params[l]`` is layer ``l``); with ``bidirectional=True`` each layer is a
:func:`jaxrnn.bidirectional` pair (``merge="concat"``, forward first, as PyTorch concatenates), so the cell has
a whole-sequence path and runs through :func:`jaxrnn.unroll` (``mode="auto"`` or ``"sequence"``, not
``mode="step"``). Layers are :func:`jaxrnn.simple_rnn` (``activation`` = ``nonlinearity``),
:func:`jaxrnn.lstm`, :func:`jaxrnn.lstmp` (``proj_size > 0``) and :func:`jaxrnn.gru` (``reset_after=True``).
``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell`` become the bare cell (params are the layer's NamedTuple). The cell's
``config`` (:class:`jaxrnn.CellConfig` ``"from_torch"``) records the module's constructor arguments, which is all
:func:`to_torch` needs to export it again; its ``name`` shows the same call for display, e.g.
``"torch.nn.LSTM(input_size=2, hidden_size=3, num_layers=2, bias=True, batch_first=True, bidirectional=True,
proj_size=0)"``, and is never read back.

What is exported. Every function here reads a cell's structure from ``cell.config``, declared by the factories
(:func:`jaxrnn.simple_rnn`, :func:`jaxrnn.lstm`, :func:`jaxrnn.stack`, ...), never from its ``name``: renaming a
cell changes nothing. A cell without a config, or with hyperparameters no PyTorch module has, is refused with a
message that names it (see :func:`torch_spec`).

Semantics, PyTorch -> jaxrnn (per layer and direction; PyTorch stores ``weight: [out, in]``, jaxrnn ``[in, out]``):

* Weights: ``w_i = weight_ih.T: [I, G*H]``, ``w_h = weight_hh.T: [H, G*H]`` (``[P, 4H]`` with a projection),
  ``w_r = weight_hr.T: [H, P]``. Gate blocks keep PyTorch's order, never permuted: LSTM ``[i, f, g, o]``, GRU
  ``[r, z, n]``.
* Biases: PyTorch has two, ``b_ih`` and ``b_hh``, and only their sum matters, so jaxrnn keeps one:
  ``b = b_ih + b_hh``. The GRU is the exception: its candidate reads
  ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, the reset gate multiplies ``b_hn``, so ``b_hn`` stays
  separate: ``b = b_ih + [b_hr, b_hz, 0]`` and ``b_hn = b_hh[2H:]``.
* Export puts the summed bias in ``bias_ih`` and zeros in ``bias_hh`` (GRU: ``bias_hh = [0, 0, b_hn]``). So
  jaxrnn -> torch -> jaxrnn returns identical params (``b + 0 == b``), while torch -> jaxrnn -> torch is exact up
  to the split of the two biases between ``bias_ih`` and ``bias_hh`` (the sums, hence the outputs, are equal).
* ``dropout`` between layers maps both ways to ``jaxrnn.stack(..., dropout=rate)``: dropout on the output of every
  layer but the last, drawn only when ``initial_carry`` gets a key (training); without a key the cell computes the
  module in ``eval()`` mode. The masks are jaxrnn's (the same rate, not PyTorch's random numbers).
* Weights are read through the module (``module.weight_hh_l0``), so a parametrized module (``weight_norm``,
  ``spectral_norm``) converts with its effective weights; ``torch.compile``-d and ``torch.jit.script``-ed modules
  are unwrapped. float64 tensors give float64 params only with JAX's x64 on (``jax_enable_x64``); without it
  :func:`from_torch` warns that they become float32.
* ``batch_first``: PyTorch's default layout is time-major ``[T, B, I]``; jaxrnn's default is batch-major. Call
  ``jaxrnn.unroll(cell, params, carry, xs, time_major=not batch_first)``, or :func:`torch_forward`, which reads
  ``batch_first`` from the cell's config and returns PyTorch's layout.
* Final states: PyTorch's ``h_n`` (and ``c_n``) are ``[num_layers * num_directions, B, H]``, index
  ``l * num_directions + d`` (``d = 1``: the backward direction, whose final state is the one after reading
  ``x_0``). jaxrnn's carry is a tuple over layers of ``BidirectionalCarry(fwd, bwd)`` or a layer carry
  (``LSTMCarry(h, c)``, ...). :func:`carry_to_torch` and :func:`carry_from_torch` convert between the two
  (``h`` of an LSTM with projection is ``[.., P]``, ``c`` is ``[.., H]``).
* Variable lengths: ``nn.utils.rnn.pack_padded_sequence(x, lengths)`` is ``jaxrnn.unroll(...,
  seq_lengths=lengths)``: the backward direction starts at each sequence's own last step, padded outputs are
  zeros (as ``pad_packed_sequence`` pads them) and the final carry is each sequence's own.

Example:

  >>> import torch, jax.numpy as jnp, numpy as np
  >>> from jaxrnn.interop import from_torch, to_torch, torch_forward
  >>> _ = torch.manual_seed(0)
  >>> m = torch.nn.GRU(2, 3, num_layers=2, bidirectional=True)
  >>> cell, params = from_torch(m)
  >>> x = torch.randn(5, 4, 2)                                    # [T, B, I]: batch_first=False
  >>> out, h_n = torch_forward(cell, params, jnp.asarray(x.numpy()))
  >>> out_t, h_n_t = m(x)
  >>> out.shape, h_n.shape
  ((5, 4, 6), (4, 4, 3))
  >>> bool(np.allclose(out, out_t.detach().numpy(), atol=1e-5))
  True
  >>> sorted(to_torch(cell, params)) == sorted(m.state_dict())
  True
"""

from __future__ import annotations

import re
import sys
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.cells.gru import GRUCarry, GRUParams, gru
from jaxrnn.cells.lstm import LSTMCarry, LSTMParams, lstm
from jaxrnn.cells.lstmp import LSTMPCarry, LSTMPParams, lstmp
from jaxrnn.cells.simple_rnn import SimpleRNNCarry, SimpleRNNParams, simple_rnn
from jaxrnn.combinators.bidirectional import BidirectionalCarry, BidirectionalParams, bidirectional
from jaxrnn.combinators.dropout import DropoutCarry
from jaxrnn.combinators.stack import stack
from jaxrnn.types import Cell, CellConfig
from jaxrnn.unroll import unroll as _unroll

if TYPE_CHECKING:
  import torch  # annotations only: torch is imported when a function needs it

MODULES = ("RNN", "LSTM", "GRU")
CELL_MODULES = ("RNNCell", "LSTMCell", "GRUCell")
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_NONLINEARITIES = ("tanh", "relu")
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)(?:_l(\d+)(_reverse)?)?$")
_EXTRA = "pip install 'jaxrnn[torch]'"


class TorchSpec(NamedTuple):
  """The constructor arguments of a PyTorch recurrent module, as :func:`torch_spec` reads them from a cell.

  ``mode`` is the class name (``"LSTM"``, ``"GRUCell"``, ...); ``getattr(torch.nn, mode)(**spec.kwargs())``
  builds the module. ``input_size`` is ``None`` for a jaxrnn cell read without params (its config does not know
  what it will read).
  """

  mode: str  # "RNN" | "LSTM" | "GRU" | "RNNCell" | "LSTMCell" | "GRUCell"
  input_size: Optional[int]  # I
  hidden_size: int  # H
  num_layers: int = 1
  bias: bool = True
  batch_first: bool = False
  bidirectional: bool = False
  proj_size: int = 0  # P (LSTM only)
  nonlinearity: str = "tanh"  # RNN and RNNCell only
  dropout: float = 0.0  # between layers (RNN/LSTM/GRU only)

  @property
  def kind(self) -> str:
    """``"RNN"``, ``"LSTM"`` or ``"GRU"`` (the module family, cell or not)."""
    return self.mode[:-4] if self.mode.endswith("Cell") else self.mode

  @property
  def is_cell(self) -> bool:
    """Whether the module is one of the ``*Cell`` classes (one step, one layer, no ``_l0`` key suffixes)."""
    return self.mode.endswith("Cell")

  @property
  def num_directions(self) -> int:
    return 2 if self.bidirectional else 1

  @property
  def has_proj(self) -> bool:
    return self.proj_size > 0

  def kwargs(self) -> dict:
    """The keyword arguments of the PyTorch constructor (only those this class takes)."""
    kw = {"input_size": self.input_size, "hidden_size": self.hidden_size}
    if not self.is_cell:
      kw["num_layers"] = self.num_layers
    if self.kind == "RNN":
      kw["nonlinearity"] = self.nonlinearity
    kw["bias"] = self.bias
    if not self.is_cell:
      kw["batch_first"] = self.batch_first
      kw["bidirectional"] = self.bidirectional
    if self.mode == "LSTM":
      kw["proj_size"] = self.proj_size
    if not self.is_cell and self.dropout:
      kw["dropout"] = self.dropout
    return kw

  def name(self) -> str:
    """The constructor call, e.g. ``"torch.nn.GRUCell(input_size=2, hidden_size=3, bias=True)"``."""
    return f"torch.nn.{self.mode}(" + ", ".join(f"{k}={v!r}" for k, v in self.kwargs().items()) + ")"


class _Layout(NamedTuple):
  """How a cell's params and carry nest: ``"stack"`` (tuple of layers), ``"bidirectional"`` or ``"leaf"``."""

  spec: TorchSpec
  nesting: str


# ----------------------------------------------------------------------------------------------------------------
# torch, lazily.


def _import_torch():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"jaxrnn.interop.torch needs PyTorch, an optional dependency: {_EXTRA}") from e
  return torch


def _loaded_torch():
  """The torch module if the caller has already imported it, else ``None`` (never imports it)."""
  return sys.modules.get("torch")


def _is_tensor(x: Any) -> bool:
  torch = _loaded_torch()
  return torch is not None and isinstance(x, torch.Tensor)


def _to_numpy(name: str, x: Any) -> np.ndarray:
  """A floating NumPy array from a torch tensor, a NumPy or a JAX array (bfloat16 stays bfloat16)."""
  torch = _loaded_torch()
  if torch is not None and isinstance(x, torch.Tensor):
    t = x.detach().cpu()
    if t.dtype == torch.bfloat16:
      a = t.to(torch.float32).numpy().astype(jnp.bfloat16)
    else:
      a = t.numpy()
  elif isinstance(x, (np.ndarray, jax.Array)):
    a = np.asarray(x)
  else:
    raise TypeError(f"{name} must be a torch.Tensor, a NumPy or a JAX array, got {type(x).__name__}")
  if not jnp.issubdtype(a.dtype, jnp.floating):
    raise TypeError(f"{name} must be a floating-point array, got dtype {a.dtype}")
  return a


def _warn_float64(what: str, dtype: Any) -> None:
  """Warns that float64 ``what`` become float32 in JAX without x64 (JAX would do it silently)."""
  if dtype == np.float64 and not jax.config.read("jax_enable_x64"):
    warnings.warn(f"the PyTorch {what} are float64 but JAX's x64 mode is off, so they become float32; "
                  "jax.config.update('jax_enable_x64', True) keeps float64 (or convert them with .float())",
                  stacklevel=3)


def _to_tensor(a: Any):
  torch = _import_torch()
  a = np.array(a)  # a writable copy
  if a.dtype == jnp.bfloat16:
    return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
  return torch.from_numpy(a)


# ----------------------------------------------------------------------------------------------------------------
# Specs: from a module, from a state_dict, from a cell's config.


def _unwrapped(module: Any) -> Any:
  """The module a ``torch.compile``-d one wraps (``OptimizedModule._orig_mod``), else ``module``."""
  eval_frame = sys.modules.get("torch._dynamo.eval_frame")  # loaded by anything torch.compile made
  if eval_frame is not None and isinstance(module, eval_frame.OptimizedModule):
    return _unwrapped(module._orig_mod)  # pylint: disable=protected-access
  return module


def _spec_from_module(module: Any) -> Tuple[Optional[TorchSpec], Any]:
  """``(spec, module)`` of a torch recurrent module (unwrapped from ``torch.compile``; a ``torch.jit.script``-ed
  one too), ``(None, module)`` if ``module`` is not one."""
  torch = _loaded_torch()
  if torch is None or not isinstance(module, torch.nn.Module):
    return None, module
  module = _unwrapped(module)
  nn = torch.nn
  mode = next((m for m in MODULES + CELL_MODULES if isinstance(module, getattr(nn, m))), None)
  if mode is None and isinstance(module, torch.jit.ScriptModule):
    mode = module.original_name if module.original_name in MODULES + CELL_MODULES else None
  if mode is None:
    return None, module
  if mode in MODULES:
    return TorchSpec(mode=mode, input_size=module.input_size, hidden_size=module.hidden_size,
                     num_layers=module.num_layers, bias=bool(module.bias), batch_first=bool(module.batch_first),
                     bidirectional=bool(module.bidirectional), proj_size=int(getattr(module, "proj_size", 0)),
                     nonlinearity=getattr(module, "nonlinearity", "tanh"),
                     dropout=float(module.dropout) if module.num_layers > 1 else 0.0), module
  return TorchSpec(mode=mode, input_size=module.input_size, hidden_size=module.hidden_size,
                   bias=bool(module.bias), nonlinearity=getattr(module, "nonlinearity", "tanh")), module


def _module_weights(module: Any, spec: TorchSpec) -> dict:
  """The module's effective weights by ``state_dict`` name, read through the module (parametrizations applied)."""
  sd = {}
  for k in _expected_shapes(spec):
    value = getattr(module, k, None)
    if value is None:
      raise ValueError(f"{spec.name()} has no tensor {k!r} (got state_dict keys {sorted(module.state_dict())})")
    sd[k] = _to_numpy(f"module.{k}", value)
  return sd


def _expected_shapes(spec: TorchSpec) -> dict:
  """``{key: shape}`` of the module's ``state_dict``, in PyTorch's order."""
  G, H, P = _GATES[spec.kind], spec.hidden_size, spec.proj_size or 0
  h_out = P or H
  shapes = {}
  for l in range(spec.num_layers):
    in_size = spec.input_size if l == 0 else spec.num_directions * h_out
    for d in range(spec.num_directions):
      sfx = "" if spec.is_cell else f"_l{l}" + ("_reverse" if d else "")
      shapes[f"weight_ih{sfx}"] = (G * H, in_size)
      shapes[f"weight_hh{sfx}"] = (G * H, h_out)
      if spec.bias:
        shapes[f"bias_ih{sfx}"] = (G * H,)
        shapes[f"bias_hh{sfx}"] = (G * H,)
      if P:
        shapes[f"weight_hr{sfx}"] = (P, H)
  return shapes


def _infer_spec(sd: Mapping[str, np.ndarray], mode: Optional[str], nonlinearity: Optional[str],
                batch_first: Optional[bool]) -> TorchSpec:
  """The spec of a bare ``state_dict``: layers, directions, bias and projection from its keys and shapes."""
  parsed = {}
  bad = []
  for k in sd:
    m = _KEY.match(k) if isinstance(k, str) else None
    if m is None:
      bad.append(k)
    else:
      parsed[k] = (m.group(1), m.group(2), m.group(3))
  if bad:
    prefixes = {k.rsplit(".", 1)[0] + "." for k in bad if isinstance(k, str) and "." in k
                and _KEY.match(k.rsplit(".", 1)[1])}
    if len(prefixes) == 1 and len(bad) == len(sd):
      (prefix,) = prefixes
      raise ValueError(f"state_dict keys start with {prefix!r} (a model's state_dict): pass the module itself, or "
                       f"{{k[len({prefix!r}):]: v for k, v in sd.items() if k.startswith({prefix!r})}}")
    shown = ", ".join(repr(k) for k in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise ValueError(
        f"state_dict has keys that no nn.RNN/LSTM/GRU (weight_ih_l0, bias_hh_l1_reverse, weight_hr_l0, ...) or "
        f"nn.RNNCell/LSTMCell/GRUCell (weight_ih, weight_hh, bias_ih, bias_hh) has: {shown}")
  cell_style = {v[1] is None for v in parsed.values()}
  if cell_style == {True, False}:
    raise ValueError("state_dict mixes the keys of a *Cell module (weight_ih, ...) and of a multi-layer module "
                     f"(weight_ih_l0, ...): {sorted(sd)}")
  is_cell = cell_style == {True}
  sfx0 = "" if is_cell else "_l0"
  for base in ("weight_ih", "weight_hh"):
    if base + sfx0 not in sd:
      raise ValueError(f"state_dict is missing key {base + sfx0!r}, got keys {sorted(sd)}")
  layers = 1 if is_cell else 1 + max(int(v[1]) for v in parsed.values())
  bidi = any(v[2] for v in parsed.values())
  has_bias = any(v[0].startswith("bias") for v in parsed.values())
  w_hh = sd["weight_hh" + sfx0]
  w_ih = sd["weight_ih" + sfx0]
  for k, a in (("weight_hh" + sfx0, w_hh), ("weight_ih" + sfx0, w_ih)):
    if a.ndim != 2:
      raise ValueError(f"state_dict[{k!r}] must be a matrix [gates * hidden_size, in], got shape {a.shape}")
  w_hr = sd.get("weight_hr" + sfx0)
  if w_hr is not None:
    if w_hr.ndim != 2:
      raise ValueError(f"state_dict['weight_hr{sfx0}'] must be a matrix [proj_size, hidden_size], got shape "
                       f"{w_hr.shape}")
    P, H = w_hr.shape
  else:
    P, H = 0, w_hh.shape[1]
  if H == 0 or w_hh.shape[0] % H:
    raise ValueError(f"state_dict['weight_hh{sfx0}'] must have shape [gates * hidden_size, hidden_size] with gates "
                     f"1 (RNN), 3 (GRU) or 4 (LSTM), got shape {w_hh.shape}")
  gates = w_hh.shape[0] // H
  kinds = {g: k for k, g in _GATES.items()}
  if gates not in kinds:
    raise ValueError(f"state_dict['weight_hh{sfx0}'] has {gates} gate blocks of hidden_size {H} (shape "
                     f"{w_hh.shape}); expected 1 (RNN), 3 (GRU) or 4 (LSTM)")
  kind = kinds[gates]
  inferred = kind + ("Cell" if is_cell else "")
  if mode is not None:
    if mode not in MODULES + CELL_MODULES:
      raise ValueError(f"mode must be one of {MODULES + CELL_MODULES} (or None to infer it), got {mode!r}")
    if mode != inferred:
      raise ValueError(f"mode={mode!r} does not match the state_dict, whose weight_hh{sfx0} of shape {w_hh.shape} "
                       f"and {'unsuffixed' if is_cell else '_l<k>'} keys are those of nn.{inferred}")
  if P and kind != "LSTM":
    raise ValueError(f"proj_size (key 'weight_hr{sfx0}') is only supported by nn.LSTM, got a state_dict of "
                     f"nn.{inferred}")
  if nonlinearity is not None and kind != "RNN":
    raise ValueError(f"nonlinearity is an argument of nn.RNN/nn.RNNCell only, got nonlinearity={nonlinearity!r} "
                     f"for nn.{inferred}")
  if batch_first is not None and is_cell and batch_first:
    raise ValueError(f"batch_first is an argument of nn.RNN/LSTM/GRU, not of nn.{inferred}")
  return TorchSpec(mode=inferred, input_size=w_ih.shape[1], hidden_size=H, num_layers=layers, bias=has_bias,
                   batch_first=bool(batch_first), bidirectional=bidi, proj_size=P,
                   nonlinearity=nonlinearity or "tanh")


def _check_state_dict(sd: Mapping[str, np.ndarray], spec: TorchSpec) -> None:
  expected = _expected_shapes(spec)
  missing = [k for k in expected if k not in sd]
  if missing:
    raise ValueError(f"state_dict is missing keys {missing} of {spec.name()}")
  unexpected = [k for k in sd if k not in expected]
  if unexpected:
    raise ValueError(f"state_dict has keys {unexpected} that {spec.name()} does not have (inconsistent layers, "
                     "directions or biases?)")
  for k, shape in expected.items():
    if tuple(sd[k].shape) != shape:
      raise ValueError(f"state_dict[{k!r}] must have shape {shape} for {spec.name()}, got shape "
                       f"{tuple(sd[k].shape)}")


_SUPPORTED = (
    "cells made by from_torch; jaxrnn's simple_rnn (activation 'tanh' or 'relu'), irnn, lstm and lstmp (activation "
    "'tanh', gate_activation 'sigmoid') and gru (the same, reset_after=True) cells; bidirectional pairs of the same "
    "cell with merge='concat'; stacks of these with all layers alike, without skip connections (a stack's "
    "dropout=p is the module's dropout)")


def _unsupported(cell_name: str, why: str) -> ValueError:
  return ValueError(f"cannot map cell {cell_name!r} to a PyTorch module: {why}. Supported: {_SUPPORTED}")


class _Unit(NamedTuple):
  """One layer in one direction, as a PyTorch module sees it (from the cell's config)."""

  kind: str  # "RNN" | "LSTM" | "GRU"
  nonlinearity: str
  hidden_size: int
  proj_size: int
  bias: bool

  def describe(self) -> str:
    act = f"nonlinearity={self.nonlinearity!r}, " if self.kind == "RNN" else ""
    proj = f", proj_size={self.proj_size}" if self.proj_size else ""
    return f"{self.kind}({act}hidden_size={self.hidden_size}{proj}, bias={self.bias})"


def _label(what: Optional[str], cell: Cell) -> str:
  """How a message names ``cell``: ``"it"`` (the cell exported) or e.g. ``"layer 1 'bidirectional(lstm,lstm)'"``."""
  return "it" if what is None else f"{what} {cell.name!r}"


def _declared(top: str, cell: Cell, what: Optional[str]):
  """``cell.config``, or a clear error naming the cell exported (``top``) and the one without config."""
  if cell.config is None:
    raise _unsupported(top, f"{_label(what, cell)} has no declared structure (its config is None): the wrappers that "
                       "change the math (dropout, residual, with_projection, learned_initial_carry, reset_on, ...) "
                       "declare none, nor do cells no exporter knows, such as lstm(variant=...)")
  return cell.config


def _not_torch(name: str, value: Any) -> str:
  return f"a custom {name} (a callable)" if value == "custom" else f"{name}={value!r}"


def _unit(top: str, cell: Cell, what: Optional[str]) -> _Unit:
  """The PyTorch layer that one jaxrnn cell (not a combinator) computes."""
  cfg = _declared(top, cell, what)
  label = _label(what, cell)
  if cfg.factory == "from_torch":
    mode = cfg.get("mode")
    if not mode.endswith("Cell"):
      raise _unsupported(top, f"{label} is a whole torch.nn.{mode} module (from from_torch), not one layer: "
                         "PyTorch's recurrent modules do not nest")
    return _unit(top, cfg.cells[0], what)  # a *Cell: its inner cell, as the factories built it
  act, gate_act = cfg.get("activation"), cfg.get("gate_activation")
  if cfg.factory in ("simple_rnn", "irnn"):
    if act not in _NONLINEARITIES:
      raise _unsupported(top, f"{label} has {_not_torch('activation', act)}; nn.RNN's nonlinearity is 'tanh' or "
                         "'relu'")
    return _Unit("RNN", act, cfg.get("hidden_size"), 0, cfg.get("use_bias"))
  if cfg.factory not in ("lstm", "lstmp", "gru"):
    raise _unsupported(top, f"{label} is made by {cfg.factory}, which is not a layer of any PyTorch recurrent module")
  wrong = [_not_torch(n, v) for n, v, want in (("activation", act, "tanh"), ("gate_activation", gate_act, "sigmoid"))
           if v != want]
  if wrong:
    raise _unsupported(top, f"{label} has {' and '.join(wrong)}; PyTorch's nn.LSTM and nn.GRU use tanh and sigmoid")
  if cfg.factory == "gru":
    if not cfg.get("reset_after"):
      raise _unsupported(top, f"{label} has reset_after=False, but PyTorch's GRU applies the reset gate after the "
                         "recurrent matmul (jaxrnn.gru(reset_after=True))")
    return _Unit("GRU", "tanh", cfg.get("hidden_size"), 0, cfg.get("use_bias"))
  return _Unit("LSTM", "tanh", cfg.get("hidden_size"), cfg.get("proj_size", 0), cfg.get("use_bias"))


def _layer(top: str, cell: Cell, what: Optional[str]) -> Tuple[_Unit, int]:
  """``(unit, num_directions)`` of one layer: a cell, or a bidirectional pair of the same cell."""
  cfg = _declared(top, cell, what)
  if cfg.factory != "bidirectional":
    return _unit(top, cell, what), 1
  label = _label(what, cell)
  merge = cfg.get("merge")
  if merge != "concat":
    raise _unsupported(top, f"{label} has {_not_torch('merge', merge)}; PyTorch concatenates the directions "
                       "(merge='concat')")
  fwd, bwd = cfg.cells
  owner = "its" if what is None else f"{what}'s"
  units = _unit(top, fwd, f"{owner} fwd"), _unit(top, bwd, f"{owner} bwd")
  if units[0] != units[1]:
    raise _unsupported(top, f"a PyTorch bidirectional layer has the same cell both ways, {label} has "
                       f"{units[0].describe()} forwards and {units[1].describe()} backwards")
  return units[0], 2


def _layout(cell: Cell) -> _Layout:
  """The structure of a cell from its declared config: a torch spec (cells of from_torch) or jaxrnn's factories."""
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a jaxrnn.Cell, got {type(cell).__name__}")
  top = cell.name
  cfg = _declared(top, cell, None)
  if cfg.factory == "from_torch":
    spec = TorchSpec(**dict(cfg.kwargs))
    return _Layout(spec, "leaf" if spec.is_cell else "stack")
  if cfg.factory == "stack":
    for arg in ("skip_input", "skip_output"):
      if cfg.get(arg):
        raise _unsupported(top, f"it is a stack({arg}=True); a PyTorch module feeds each layer the one below only "
                           "and outputs the last layer")
    layers = [_layer(top, c, f"layer {i}") for i, c in enumerate(cfg.cells)]
    nesting = "stack"
  else:
    layers = [_layer(top, cell, None)]
    nesting = "bidirectional" if layers[0][1] == 2 else "leaf"
  kinds = [f"{'bidirectional ' if d == 2 else ''}{u.kind}" + (f"({u.nonlinearity})" if u.kind == "RNN" else "")
           + (" with projection" if u.proj_size else "") for u, d in layers]
  if len(set(kinds)) != 1:
    raise _unsupported(top, "a PyTorch module has the same kind of layer and the same directions in every layer, "
                       f"got {kinds}")
  if len({u for u, _ in layers}) != 1:
    raise _unsupported(top, "a PyTorch module has the same hidden_size, proj_size and bias in every layer, got "
                       f"{[u.describe() for u, _ in layers]}")
  unit, dirs = layers[0]
  spec = TorchSpec(mode=unit.kind, input_size=None, hidden_size=unit.hidden_size, num_layers=len(layers),
                   bias=unit.bias, bidirectional=dirs == 2, proj_size=unit.proj_size, nonlinearity=unit.nonlinearity,
                   dropout=float(cfg.get("dropout", 0.0)) if nesting == "stack" and len(layers) > 1 else 0.0)
  return _Layout(spec, nesting)


# ----------------------------------------------------------------------------------------------------------------
# Params and carries per (layer, direction).

_PARAMS = {"RNN": SimpleRNNParams, "GRU": GRUParams, "LSTM": LSTMParams}
_CARRIES = {"RNN": SimpleRNNCarry, "GRU": GRUCarry, "LSTM": LSTMCarry}


def _unit_types(spec: TorchSpec) -> Tuple[type, type]:
  if spec.kind == "LSTM" and spec.has_proj:
    return LSTMPParams, LSTMPCarry
  return _PARAMS[spec.kind], _CARRIES[spec.kind]


def _units(layout: _Layout, tree: Any, what: str, pair_type: type) -> List[List[Tuple[str, Any]]]:
  """``[[(path, unit), ...directions], ...layers]`` of a params or carry tree, checking its nesting."""
  spec = layout.spec
  L, D = spec.num_layers, spec.num_directions

  def directions(path, t):
    if D == 1:
      return [(path, t)]
    if not isinstance(t, pair_type):
      raise TypeError(f"{path} must be a {pair_type.__name__}(fwd, bwd) for a bidirectional layer, got "
                      f"{type(t).__name__}")
    return [(f"{path}.fwd", t.fwd), (f"{path}.bwd", t.bwd)]

  if layout.nesting == "stack":
    if not isinstance(tree, tuple) or type(tree) is not tuple or len(tree) != L:
      got = f"{type(tree).__name__}" + (f" of length {len(tree)}" if isinstance(tree, tuple) else "")
      raise TypeError(f"{what} must be a tuple of {L} layer {what} (one per layer), got {got}")
    return [directions(f"{what}[{l}]", t) for l, t in enumerate(tree)]
  return [directions(what, tree)]


def _nest(layout: _Layout, units: List[List[Any]], pair_type: type) -> Any:
  layers = [pair_type(*u) if layout.spec.bidirectional else u[0] for u in units]
  return tuple(layers) if layout.nesting == "stack" else layers[0]


def _input_size(spec: TorchSpec, path: str, p: Any) -> int:
  """The input size of a jaxrnn cell (its config does not record it), from the first unit's params."""
  params_type, _ = _unit_types(spec)
  if not isinstance(p, params_type):
    raise TypeError(f"{path} must be a {params_type.__name__}{params_type._fields}, got {type(p).__name__}")
  w_i = np.shape(p.w_i)
  if len(w_i) != 2:
    raise ValueError(f"{path}.w_i must have shape [input_size, {_GATES[spec.kind]} * hidden_size], got {w_i}")
  return w_i[0]


def _check_unit(spec: TorchSpec, path: str, p: Any, in_size: int) -> None:
  params_type, _ = _unit_types(spec)
  if not isinstance(p, params_type):
    raise TypeError(f"{path} must be a {params_type.__name__}{params_type._fields}, got {type(p).__name__}")
  G, H, P = _GATES[spec.kind], spec.hidden_size, spec.proj_size
  h_out = P or H
  expected: Dict[str, Tuple[int, ...]] = {"w_i": (in_size, G * H), "w_h": (h_out, G * H)}
  if spec.bias:
    expected["b"] = (G * H,)
  if spec.kind == "GRU" and spec.bias:
    expected["b_hn"] = (H,)
  if P:
    expected["w_r"] = (H, P)
  for field, shape in expected.items():
    leaf = getattr(p, field)
    if leaf is None or tuple(np.shape(leaf)) != shape:
      got = "None" if leaf is None else f"shape {tuple(np.shape(leaf))}"
      raise ValueError(f"{path}.{field} must have shape {shape} for {spec.name()}, got {got}")
  for field in ("b", "b_hn"):
    if field in p._fields and field not in expected and getattr(p, field) is not None:
      raise ValueError(f"{path}.{field} must be None: {spec.name()} has no bias (a PyTorch module has biases in "
                       "every layer or in none), got an array")


def torch_spec(cell: Cell, params: Any = None) -> TorchSpec:
  """The PyTorch module that ``cell`` (with ``params``) computes, as a :class:`TorchSpec`.

  The structure is read from ``cell.config`` (:class:`jaxrnn.CellConfig`, set by the factories), never from
  ``cell.name``: a renamed cell (``stack(..., name="encoder")``) exports as before. A cell without a config (the
  wrappers that change the math: ``dropout``, ``residual``, ``with_projection``, ...; ``lstm(variant=...)``) is
  refused, as are hyperparameters no PyTorch module has (a custom activation, ``gru(reset_after=False)``,
  ``stack(skip_output=True)``, a ``bidirectional`` merge other than ``"concat"``).

  Args:
    cell: a cell from :func:`from_torch` (its config is the spec), or a jaxrnn ``simple_rnn`` (tanh or relu),
      ``irnn``, ``lstm``, ``lstmp`` or ``gru`` (``reset_after=True``) cell with the default activations, a
      ``bidirectional`` pair of one of them (``merge="concat"``), or a ``stack`` of these with all layers alike.
    params: the cell's params; they give the ``input_size`` of a plain jaxrnn cell (``None``: ``input_size`` is
      ``None``).

  Returns:
    The :class:`TorchSpec`; with ``params``, checked against them.

  Raises:
    ValueError, TypeError: a cell no PyTorch module computes, or params that do not fit it (named by path, e.g.
      ``params[1].fwd.w_i``, with the expected and actual shapes).
  """
  layout = _layout(cell)
  if params is None:
    return layout.spec
  return _checked_layout(layout, params)[0].spec


def _checked_layout(layout: _Layout, params: Any) -> Tuple[_Layout, List[List[Tuple[str, Any]]]]:
  spec = layout.spec
  if spec.kind == "LSTM" and spec.proj_size and spec.proj_size >= spec.hidden_size:
    raise ValueError(f"PyTorch requires proj_size < hidden_size, got proj_size={spec.proj_size} and "
                     f"hidden_size={spec.hidden_size}")
  units = _units(layout, params, "params", BidirectionalParams)
  in_size = _input_size(spec, *units[0][0]) if spec.input_size is None else spec.input_size
  spec = spec._replace(input_size=in_size)
  layout = layout._replace(spec=spec)
  h_out = spec.proj_size or spec.hidden_size
  for l, unit in enumerate(units):
    for path, p in unit:
      _check_unit(spec, path, p, in_size if l == 0 else spec.num_directions * h_out)
  return layout, units


# ----------------------------------------------------------------------------------------------------------------
# The conversions.


def _build_cell(spec: TorchSpec, param_dtype: Any) -> Cell:
  def layer():
    if spec.kind == "RNN":
      return simple_rnn(spec.hidden_size, activation=spec.nonlinearity, use_bias=spec.bias, param_dtype=param_dtype)
    if spec.kind == "GRU":
      return gru(spec.hidden_size, reset_after=True, use_bias=spec.bias, param_dtype=param_dtype)
    if spec.proj_size:
      return lstmp(spec.hidden_size, spec.proj_size, use_bias=spec.bias, param_dtype=param_dtype)
    return lstm(spec.hidden_size, use_bias=spec.bias, param_dtype=param_dtype)

  if spec.is_cell:
    cell = layer()
  else:
    cell = stack(*[bidirectional(layer(), layer()) if spec.bidirectional else layer()
                   for _ in range(spec.num_layers)], dropout=spec.dropout)
  # The module's constructor arguments are the cell's declared structure (batch_first and input_size too, which
  # no jaxrnn factory records); the factory-built cell, with its own config, is the one inner cell.
  config = CellConfig("from_torch", tuple(sorted(spec._asdict().items())), (cell,))
  return cell._replace(name=spec.name(), config=config)


def from_torch(module_or_state_dict: Any, *, mode: Optional[str] = None, nonlinearity: Optional[str] = None,
               batch_first: Optional[bool] = None) -> Tuple[Cell, Any]:
  """A jaxrnn ``(cell, params)`` that computes a PyTorch recurrent module exactly.

  Args:
    module_or_state_dict: an ``nn.RNN``, ``nn.LSTM`` (``proj_size`` too), ``nn.GRU``, ``nn.RNNCell``,
      ``nn.LSTMCell`` or ``nn.GRUCell``; or its ``state_dict()`` (a mapping of names to torch tensors, NumPy or
      JAX arrays; NumPy needs no torch). From a ``state_dict``, the layers, directions, ``bias`` and
      ``proj_size`` are read from the keys and shapes, the kind from the gate blocks of ``weight_hh``.
    mode: for a ``state_dict``: ``"RNN"``, ``"LSTM"``, ``"GRU"`` or a ``*Cell`` name, checked against the
      inferred one (``None``: inferred).
    nonlinearity: for a ``state_dict`` of ``nn.RNN``/``nn.RNNCell``: ``"tanh"`` (default) or ``"relu"``.
    batch_first: for a ``state_dict`` of ``nn.RNN``/``LSTM``/``GRU``: recorded in the cell's config, where
      :func:`torch_forward` and :func:`torch_spec` read it (default ``False``, as PyTorch).
      With a module, these three come from the module and may only repeat its values.

  Returns:
    ``(cell, params)``: for a module class without ``Cell``, a :func:`jaxrnn.stack` of ``num_layers`` layers
    (:func:`jaxrnn.bidirectional` pairs if ``bidirectional``) and a tuple of per-layer params; for a ``*Cell``,
    the jaxrnn cell and its params. Params have the tensors' dtype. ``cell.config`` is
    ``CellConfig("from_torch", <the module's constructor arguments>, (<the same cell as built by the
    factories>,))`` and ``cell.name`` shows the module's constructor call.

  Raises:
    TypeError: not a supported module or mapping; non-floating tensors.
    ValueError: inconsistent keys or shapes (the key, the expected and the actual shape are named), options no
      PyTorch module has (``weight_hr`` with a GRU), arguments that contradict the module.
    ImportError: never for NumPy/JAX state dicts; torch objects imply torch is installed.
  """
  spec, module = _spec_from_module(module_or_state_dict)
  if spec is not None:
    given = {"mode": (mode, spec.mode), "nonlinearity": (nonlinearity, spec.nonlinearity if spec.kind == "RNN"
                                                         else None),
             "batch_first": (batch_first, spec.batch_first if not spec.is_cell else None)}
    for arg, (value, actual) in given.items():
      if value is not None and value != actual:
        raise ValueError(f"{arg}={value!r} contradicts the module, whose {arg} is {actual!r}; pass {arg} only with "
                         "a state_dict")
    sd = _module_weights(module, spec)
  elif isinstance(module_or_state_dict, Mapping):
    sd = {k: _to_numpy(f"state_dict[{k!r}]", v) for k, v in module_or_state_dict.items()}
    if nonlinearity is not None and nonlinearity not in _NONLINEARITIES:
      raise ValueError(f"nonlinearity must be one of {_NONLINEARITIES}, got {nonlinearity!r}")
    spec = _infer_spec(sd, mode, nonlinearity, batch_first)
  else:
    obj = module_or_state_dict
    raise TypeError(
        f"module_or_state_dict must be a torch.nn.{'/'.join(MODULES + CELL_MODULES)} module or its state_dict, "
        f"got {type(obj).__module__}.{type(obj).__name__}")
  _check_state_dict(sd, spec)
  dt = np.result_type(*sd.values())
  _warn_float64("weights", dt)
  H = spec.hidden_size
  params_type, _ = _unit_types(spec)
  units = []
  for l in range(spec.num_layers):
    unit = []
    for d in range(spec.num_directions):
      sfx = "" if spec.is_cell else f"_l{l}" + ("_reverse" if d else "")
      get = lambda base, sfx=sfx: sd[base + sfx].astype(dt)
      fields = {"w_i": get("weight_ih").T, "w_h": get("weight_hh").T}
      b = b_hn = None
      if spec.bias:
        b_ih, b_hh = get("bias_ih"), get("bias_hh")
        if spec.kind == "GRU":
          b = b_ih + np.concatenate([b_hh[:2 * H], np.zeros(H, dt)])
          b_hn = b_hh[2 * H:]
        else:
          b = b_ih + b_hh
      fields["b"] = b
      if spec.kind == "GRU":
        fields["b_hn"] = b_hn
      if spec.proj_size:
        fields["w_r"] = get("weight_hr").T
      unit.append(params_type(**{k: None if v is None else jnp.asarray(v) for k, v in fields.items()}))
    units.append(unit)
  layout = _Layout(spec, "leaf" if spec.is_cell else "stack")
  return _build_cell(spec, dt), _nest(layout, units, BidirectionalParams)


def to_torch(cell: Cell, params: Any, *, mode: Optional[str] = None) -> dict:
  """A PyTorch ``state_dict`` (a dict of CPU tensors) of ``cell`` and ``params``, for ``module.load_state_dict``.

  The summed bias goes to ``bias_ih`` and ``bias_hh`` is zero (GRU: ``bias_hh = [0, 0, b_hn]``), so
  ``from_torch(to_torch(cell, params))`` returns identical params.

  Args:
    cell: a cell from :func:`from_torch`, or a plain jaxrnn cell as :func:`torch_spec` lists (a single layer
      exports as ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``num_layers=1``).
    params: its params.
    mode: ``"RNNCell"``, ``"LSTMCell"`` or ``"GRUCell"`` to export a single unidirectional layer with the keys of
      the ``*Cell`` class (no ``_l0`` suffix); ``None``: the module :func:`torch_spec` names.

  Returns:
    ``{key: torch.Tensor}`` in PyTorch's key order; :func:`torch_module` builds the module and loads it.

  Raises:
    ImportError: torch is not installed (``pip install 'jaxrnn[torch]'``).
    TypeError, ValueError: a cell or params no PyTorch module has, named by path with expected and actual.
  """
  torch_sd = _state_dict_arrays(cell, params, mode)[1]
  return {k: _to_tensor(v) for k, v in torch_sd.items()}


def _state_dict_arrays(cell: Cell, params: Any, mode: Optional[str]) -> Tuple[TorchSpec, dict]:
  _import_torch()
  layout, units = _checked_layout(_layout(cell), params)
  spec = layout.spec
  if mode is not None and mode != spec.mode:
    if mode not in CELL_MODULES or spec.is_cell or spec.num_layers != 1 or spec.bidirectional or spec.proj_size \
        or mode != spec.kind + "Cell":
      raise ValueError(f"mode={mode!r} cannot hold {spec.name()}; mode may only turn a one-layer unidirectional "
                       f"module without projection into its *Cell ({spec.kind}Cell)")
    spec = TorchSpec(mode=mode, input_size=spec.input_size, hidden_size=spec.hidden_size, bias=spec.bias,
                     nonlinearity=spec.nonlinearity)
  H = spec.hidden_size
  out = {}
  for l, unit in enumerate(units):
    for d, (_, p) in enumerate(unit):
      sfx = "" if spec.is_cell else f"_l{l}" + ("_reverse" if d else "")
      out[f"weight_ih{sfx}"] = np.asarray(p.w_i).T
      out[f"weight_hh{sfx}"] = np.asarray(p.w_h).T
      if spec.bias:
        b = np.asarray(p.b)
        out[f"bias_ih{sfx}"] = b
        if spec.kind == "GRU":
          b_hn = np.asarray(p.b_hn)
          out[f"bias_hh{sfx}"] = np.concatenate([np.zeros(2 * H, b_hn.dtype), b_hn])
        else:
          out[f"bias_hh{sfx}"] = np.zeros_like(b)
      if spec.proj_size:
        out[f"weight_hr{sfx}"] = np.asarray(p.w_r).T
  return spec, out


def torch_module(cell: Cell, params: Any, *, mode: Optional[str] = None) -> "torch.nn.Module":
  """The PyTorch module that ``cell`` computes, with ``params`` loaded, in ``eval()`` mode and the params' dtype.

  Args: as :func:`to_torch`.

  Example:

    >>> import jax, jaxrnn
    >>> from jaxrnn.interop import torch_module
    >>> cell = jaxrnn.stack(jaxrnn.lstm(3), jaxrnn.lstm(3))
    >>> torch_module(cell, cell.init(jax.random.key(0), 2))
    LSTM(2, 3, num_layers=2)
  """
  torch = _import_torch()
  spec, arrays = _state_dict_arrays(cell, params, mode)
  module = getattr(torch.nn, spec.mode)(**spec.kwargs())
  sd = {k: _to_tensor(v) for k, v in arrays.items()}
  dtypes = {t.dtype for t in sd.values()}
  if len(dtypes) == 1:
    module = module.to(dtypes.pop())
  module.load_state_dict(sd)
  return module.eval()


# ----------------------------------------------------------------------------------------------------------------
# Carries and a PyTorch-style forward.


def _has_dropout(layout: _Layout) -> bool:
  """Whether the cell is a ``stack(..., dropout=p)``, whose layers but the last carry ``DropoutCarry``."""
  return layout.nesting == "stack" and layout.spec.dropout > 0 and layout.spec.num_layers > 1


def _without_dropout_carries(layout: _Layout, carry: Any) -> Any:
  """The layer carries of a ``stack(..., dropout=p)`` without their ``DropoutCarry`` wrappers (the key is dropped)."""
  if not _has_dropout(layout) or not isinstance(carry, tuple) or type(carry) is not tuple:
    return carry
  return tuple(c.cell if isinstance(c, DropoutCarry) else c for c in carry)


def _carry_arrays(cell: Cell, carry: Any, xp: Any = jnp):
  """``h_n`` or ``(h_n, c_n)`` stacked with ``xp`` (``jnp`` under ``jit``, ``np`` on the way to torch)."""
  layout = _layout(cell)
  spec = layout.spec
  _, carry_type = _unit_types(spec)
  units = _units(layout, _without_dropout_carries(layout, carry), "carry", BidirectionalCarry)
  for unit in units:
    for path, c in unit:
      if not isinstance(c, carry_type):
        raise TypeError(f"{path} must be a {carry_type.__name__}{carry_type._fields}, got {type(c).__name__}")
  flat = [c for unit in units for _, c in unit]
  conv = np.asarray if xp is np else (lambda a: a)
  if spec.is_cell:
    c = flat[0]
    return (conv(c.h), conv(c.c)) if spec.kind == "LSTM" else conv(c.h)
  h = xp.stack([conv(c.h) for c in flat])
  if spec.kind == "LSTM":
    return h, xp.stack([conv(c.c) for c in flat])
  return h


def carry_to_torch(cell: Cell, carry: Any) -> Any:
  """A jaxrnn carry of ``cell`` in PyTorch's layout, as torch tensors: ``h_n`` or ``(h_n, c_n)`` (LSTM).

  Args:
    cell: a cell :func:`torch_spec` accepts (its config gives the layers and directions).
    carry: the cell's carry, leaves ``[*B, ...]`` (e.g. the final carry of :func:`jaxrnn.unroll`).

  Returns:
    For ``nn.RNN``/``LSTM``/``GRU``: ``h_n: [num_layers * num_directions, *B, H_out]`` (entry
    ``l * num_directions + d``) and, for an LSTM, ``c_n: [num_layers * num_directions, *B, H]``; for a ``*Cell``:
    ``h: [*B, H]`` or ``(h, c)``. ``H_out`` is ``proj_size`` with a projection, else ``H``.
  """
  out = _carry_arrays(cell, carry, np)
  if isinstance(out, tuple):
    return tuple(_to_tensor(a) for a in out)
  return _to_tensor(out)


def carry_from_torch(cell: Cell, hx: Any) -> Any:
  """PyTorch's ``h_0`` or ``(h_0, c_0)`` as the jaxrnn carry of ``cell`` (the inverse of :func:`carry_to_torch`).

  Args:
    cell: a cell :func:`torch_spec` accepts.
    hx: ``h: [num_layers * num_directions, *B, H_out]`` or, for an LSTM, ``(h, c)`` with
      ``c: [num_layers * num_directions, *B, H]``; for a ``*Cell``, ``h: [*B, H]`` or ``(h, c)``. torch tensors,
      NumPy or JAX arrays (JAX arrays stay on device, so this works under ``jit``).

  Returns:
    The carry, e.g. a tuple over layers of ``BidirectionalCarry(fwd=LSTMCarry(h, c), bwd=...)``.
  """
  layout = _layout(cell)
  spec = layout.spec
  _, carry_type = _unit_types(spec)
  lstm_like = spec.kind == "LSTM"
  if lstm_like:
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
      raise TypeError(f"hx must be a pair (h, c) for {cell.name}, got {type(hx).__name__}")
    arrays = list(hx)
  else:
    if isinstance(hx, (tuple, list)):
      raise TypeError(f"hx must be one array h (no cell state) for {cell.name}, got a {type(hx).__name__}")
    arrays = [hx]
  names = ("hx[0] (h)", "hx[1] (c)") if lstm_like else ("hx",)
  # JAX arrays (maybe traced) are sliced by JAX, others by NumPy (no per-slice dispatch or compile).
  arrays = [a if isinstance(a, jax.Array) else _to_numpy(n, a) for n, a in zip(names, arrays)]
  if lstm_like and arrays[0].shape[:-1] != arrays[1].shape[:-1]:
    raise ValueError(f"hx[0] (h) and hx[1] (c) must have the same leading shape, got {arrays[0].shape} and "
                     f"{arrays[1].shape}")
  if spec.is_cell:
    return carry_type(*(jnp.asarray(a) for a in arrays))
  n = spec.num_layers * spec.num_directions
  for name, a in zip(names, arrays):
    if a.ndim < 2 or a.shape[0] != n:
      raise ValueError(f"{name} must have shape [num_layers * num_directions = {n}, *B, H], got {a.shape}")
  D = spec.num_directions
  units = [[carry_type(*(jnp.asarray(a[l * D + d]) for a in arrays)) for d in range(D)]
           for l in range(spec.num_layers)]
  carry = _nest(layout, units, BidirectionalCarry)
  if _has_dropout(layout):  # stack(..., dropout=p) wraps every layer but the last: no key, eval() mode
    carry = tuple(DropoutCarry(cell=c, key=None) for c in carry[:-1]) + (carry[-1],)
  return carry


def torch_forward(cell: Cell, params: Any, input: Any, hx: Any = None, *,  # pylint: disable=redefined-builtin
                  seq_lengths: Any = None, batch_first: Optional[bool] = None) -> Any:
  """Runs ``cell`` as the PyTorch module's ``forward`` runs: the same layouts in and out, JAX arrays.

  Args:
    cell: a cell :func:`torch_spec` accepts.
    params: its params.
    input: for ``nn.RNN``/``LSTM``/``GRU``: ``[T, B, I]`` (``[B, T, I]`` if ``batch_first``) or unbatched
      ``[T, I]``; for a ``*Cell``: ``[B, I]`` or ``[I]``.
    hx: the initial state in PyTorch's layout (see :func:`carry_from_torch`); ``None``: zeros.
      A ``torch.nn.utils.rnn.PackedSequence`` (sorted or not) is accepted too: it is unpacked with
      ``pad_packed_sequence`` and run with its lengths, and ``output`` is then the padded output (what
      ``pad_packed_sequence`` of PyTorch's packed output gives), in the batch order of the original sequences.
    seq_lengths: ``int[B]``, the lengths of right-padded sequences: what ``pack_padded_sequence(input,
      lengths)`` gives PyTorch; outputs past a sequence's end are zeros, as ``pad_packed_sequence`` pads them.
    batch_first: the layout of ``input`` and ``output``; ``None``: the cell's (from :func:`from_torch`), else
      ``False``.

  Returns:
    ``(output, h_n)`` or ``(output, (h_n, c_n))`` for an LSTM; for a ``*Cell``: ``h'`` or ``(h', c')``.
    ``output: [T, B, D * H_out]`` (``[B, T, D * H_out]`` if ``batch_first``).
  """
  spec = _layout(cell).spec
  bf = spec.batch_first if batch_first is None else batch_first
  torch = _loaded_torch()
  if torch is not None and isinstance(input, torch.nn.utils.rnn.PackedSequence):
    if spec.is_cell:
      raise TypeError(f"{spec.name()} takes one step's input [B, I], not a PackedSequence")
    if seq_lengths is not None:
      raise ValueError("seq_lengths must be None with a PackedSequence input (it holds the lengths)")
    input, seq_lengths = torch.nn.utils.rnn.pad_packed_sequence(input, batch_first=bf)
  if _is_tensor(input):
    input = _to_numpy("input", input)
    _warn_float64("inputs", input.dtype)
  x = jnp.asarray(input)
  if spec.is_cell:
    carry = (cell.initial_carry(params, x.shape[:-1], x.dtype) if hx is None else carry_from_torch(cell, hx))
    return _carry_arrays(cell, cell.step(params, carry, x)[0])
  if x.ndim not in (2, 3):
    raise ValueError(f"input must have shape [T, B, I], [B, T, I] (batch_first) or [T, I], got {x.shape}")
  batch_shape = () if x.ndim == 2 else ((x.shape[0],) if bf else (x.shape[1],))
  carry = cell.initial_carry(params, batch_shape, x.dtype) if hx is None else carry_from_torch(cell, hx)
  if seq_lengths is not None and _is_tensor(seq_lengths):
    seq_lengths = np.asarray(seq_lengths.detach().cpu().numpy())
  final, out = _unroll(cell, params, carry, x, seq_lengths=seq_lengths, time_major=not bf)
  return out, _carry_arrays(cell, final)
