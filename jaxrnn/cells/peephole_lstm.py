"""The LSTM with peepholes (Gers & Schmidhuber 2000) and the eight variants of Greff et al. (2015).

One configurable core, :func:`peephole_lstm`: Greff et al.'s "vanilla" LSTM (input, forget and output gates,
diagonal peepholes, tanh on the block input and the output) and its variants NIG, NFG, NOG, NIAF, NOAF, NP, CIFG
and FGR, named (``variant="NOAF"``) or set flag by flag. Colah's coupled form ``c' = f⊙c + (1-f)⊙c~`` is the
``coupling="colah"`` flag (:func:`coupled_lstm`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, Union, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import initializers
from jaxrnn.cells import _dense
from jaxrnn.cells import _lstm_common
from jaxrnn.cells import _parts
from jaxrnn.cells._lstm_common import LSTMCarry
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import Cell

GATES = ("i", "f", "o")
COUPLINGS = (None, "cifg", "colah")


class LSTMVariant(NamedTuple):
  """Flags of :func:`peephole_lstm`. The defaults are Greff et al.'s vanilla LSTM.

  Fields:
    input_gate: ``False`` is NIG: ``i = 1``.
    forget_gate: ``False`` is NFG: ``f = 1``.
    output_gate: ``False`` is NOG: ``o = 1``.
    input_activation: ``False`` is NIAF: the block input ``g`` has no ``tanh``.
    output_activation: ``False`` is NOAF: ``h = o ⊙ c`` (no ``tanh`` on the cell).
    peepholes: the gates, a subset of ``("i", "f", "o")``, that look at the cell (``i``, ``f`` at ``c_{t-1}``,
      ``o`` at ``c_t``); ``()`` is NP. A string such as ``"fo"`` is accepted.
    coupling: ``None``; ``"cifg"`` (Greff: ``f = 1 - i``, only ``i`` is computed); ``"colah"`` (colah:
      ``i = 1 - f``, only ``f`` is computed).
    full_gate_recurrence: FGR: every gate activation at ``t-1`` feeds every gate at ``t`` through ``w_g``; the
      carry is then :class:`FGRCarry` holding the previous gate activations.
  """

  input_gate: bool = True
  forget_gate: bool = True
  output_gate: bool = True
  input_activation: bool = True
  output_activation: bool = True
  peepholes: Tuple[str, ...] = GATES
  coupling: Optional[str] = None
  full_gate_recurrence: bool = False


LSTM_VARIANTS = {
    "vanilla": LSTMVariant(),
    "NIG": LSTMVariant(input_gate=False, peepholes=("f", "o")),
    "NFG": LSTMVariant(forget_gate=False, peepholes=("i", "o")),
    "NOG": LSTMVariant(output_gate=False, peepholes=("i", "f")),
    "NIAF": LSTMVariant(input_activation=False),
    "NOAF": LSTMVariant(output_activation=False),
    "NP": LSTMVariant(peepholes=()),
    "CIFG": LSTMVariant(coupling="cifg", peepholes=("i", "o")),
    "FGR": LSTMVariant(full_gate_recurrence=True),
}


def lstm_variant(name: str, **overrides: Any) -> LSTMVariant:
  """The flags of a named variant of Greff et al. (2015), with optional flag overrides.

  Args:
    name: one of ``"vanilla"``, ``"NIG"``, ``"NFG"``, ``"NOG"``, ``"NIAF"``, ``"NOAF"``, ``"NP"``, ``"CIFG"``,
      ``"FGR"`` (case-insensitive).
    **overrides: :class:`LSTMVariant` fields to change.

  Raises:
    ValueError: for an unknown name (the message lists the valid ones) or an invalid combination of flags.

  >>> lstm_variant("NOAF").output_activation
  False
  >>> lstm_variant("cifg").peepholes
  ('i', 'o')
  """
  if not isinstance(name, str):
    raise TypeError(f"variant must be a str or an LSTMVariant, got {type(name).__name__} {name!r}")
  by_key = {k.lower(): v for k, v in LSTM_VARIANTS.items()}
  if name.lower() not in by_key:
    raise ValueError(f"unknown LSTM variant {name!r}; valid variants are {list(LSTM_VARIANTS)}")
  unknown = set(overrides) - set(LSTMVariant._fields)
  if unknown:
    raise TypeError(f"unknown LSTMVariant flags {sorted(unknown)}; valid flags are {list(LSTMVariant._fields)}")
  return validate_variant(by_key[name.lower()]._replace(**overrides))


def validate_variant(v: LSTMVariant) -> LSTMVariant:
  """Checks a combination of flags and normalises ``peepholes`` to a tuple in ``("i", "f", "o")`` order."""
  if not isinstance(v, LSTMVariant):
    raise TypeError(f"variant must be a str or an LSTMVariant, got {type(v).__name__}")
  for field in ("input_gate", "forget_gate", "output_gate", "input_activation", "output_activation",
                "full_gate_recurrence"):
    if not isinstance(getattr(v, field), bool):
      raise TypeError(f"{field} must be a bool, got {getattr(v, field)!r}")
  peepholes = tuple(v.peepholes)
  bad = [p for p in peepholes if p not in GATES]
  if bad or len(set(peepholes)) != len(peepholes):
    raise ValueError(f"peepholes must be distinct gates among {GATES}, got {v.peepholes!r}")
  if v.coupling not in COUPLINGS:
    raise ValueError(f"coupling must be one of {COUPLINGS}, got {v.coupling!r}")
  if v.coupling is not None and not (v.input_gate and v.forget_gate):
    raise ValueError(f"coupling={v.coupling!r} couples the input and forget gates, so it needs both "
                     f"(got input_gate={v.input_gate}, forget_gate={v.forget_gate})")
  v = v._replace(peepholes=tuple(g for g in GATES if g in peepholes))
  computed = _computed_gates(v)
  missing = [p for p in v.peepholes if p not in computed]
  if missing:
    raise ValueError(f"peepholes {missing} are on gates that this variant does not compute (computed gates: "
                     f"{computed}); drop them from peepholes")
  if v.full_gate_recurrence and not computed:
    raise ValueError("full_gate_recurrence needs at least one computed gate")
  return v


def _computed_gates(v: LSTMVariant) -> Tuple[str, ...]:
  """The gates with their own pre-activation (a coupled gate is derived from its partner)."""
  out = []
  if v.input_gate and v.coupling != "colah":
    out.append("i")
  if v.forget_gate and v.coupling != "cifg":
    out.append("f")
  if v.output_gate:
    out.append("o")
  return tuple(out)


class PeepholeLSTMParams(NamedTuple):
  """Parameters of :func:`peephole_lstm`.

  The fused kernels hold one ``H``-wide block per computed pre-activation, in PyTorch's order ``[i, f, g, o]``
  with the gates the variant does not compute left out (vanilla: ``K = 4``; NIG, NFG, NOG, CIFG: ``K = 3``).
  """

  w_i: jax.Array  # [F, K*H] input kernel
  w_h: jax.Array  # [H, K*H] recurrent kernel
  b: Optional[jax.Array]  # [K*H] bias; None if use_bias=False
  p_i: Optional[jax.Array]  # [H] input-gate peephole (looks at c_{t-1}); None without it
  p_f: Optional[jax.Array]  # [H] forget-gate peephole (looks at c_{t-1}); None without it
  p_o: Optional[jax.Array]  # [H] output-gate peephole (looks at c_t); None without it
  w_g: Optional[jax.Array]  # [G*H, G*H] FGR gate-to-gate kernel (G computed gates, [i, f, o] order); else None


class FGRCarry(NamedTuple):
  """Carry of the FGR variant: the LSTM carry plus the previous activations of the computed gates."""

  h: jax.Array  # [*B, H] hidden state, also the output
  c: jax.Array  # [*B, H] cell state
  gates: jax.Array  # [*B, G*H] gate activations at t-1, computed gates in [i, f, o] order


def peephole_lstm(
    hidden_size: int,
    *,
    variant: Union[str, LSTMVariant] = "vanilla",
    input_gate: Optional[bool] = None,
    forget_gate: Optional[bool] = None,
    output_gate: Optional[bool] = None,
    input_activation: Optional[bool] = None,
    output_activation: Optional[bool] = None,
    peepholes: Optional[Union[str, Sequence[str]]] = None,
    coupling: Optional[str] = None,
    full_gate_recurrence: Optional[bool] = None,
    forget_bias: Optional[float] = None,
    use_bias: bool = True,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    peephole_init: Callable = initializers.zeros,
    gate_recurrent_init: Callable = initializers.zeros,
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The LSTM with diagonal peepholes of Greff et al. (2015), and its variants as flags.

  Vanilla (Greff et al. 2015, "LSTM: A Search Space Odyssey"; peepholes: Gers & Schmidhuber 2000):

  .. math::

     i_t &= \sigma(x_t W_{ii} + h_{t-1} W_{hi} + p_i \odot c_{t-1} + b_i) \\
     f_t &= \sigma(x_t W_{if} + h_{t-1} W_{hf} + p_f \odot c_{t-1} + b_f) \\
     g_t &= \tanh(x_t W_{ig} + h_{t-1} W_{hg} + b_g) \\
     c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
     o_t &= \sigma(x_t W_{io} + h_{t-1} W_{ho} + p_o \odot c_t + b_o) \\
     h_t &= o_t \odot \tanh(c_t)

  Variants (``variant=`` a name, or the flags of :class:`LSTMVariant`, which override the named variant's):
  NIG ``i = 1``; NFG ``f = 1``; NOG ``o = 1``; NIAF ``g`` without ``tanh``; NOAF ``h = o ⊙ c``; NP no
  peepholes; CIFG ``f = 1 - i``; FGR adds ``a_{t-1} W_g`` to every gate's pre-activation, where ``a_{t-1}`` is
  the concatenation ``[i, f, o]_{t-1}`` of the computed gates (kept in :class:`FGRCarry`). ``coupling="colah"``
  is colah's coupled form ``c_t = f_t ⊙ c_{t-1} + (1 - f_t) ⊙ g_t``. ``peepholes`` may name any subset of the
  computed gates.

  The input projection (everything but the ``h``, ``c`` and ``a`` terms) is hoisted out of the time loop.

  Args:
    hidden_size: ``H``.
    variant: ``"vanilla"``, ``"NIG"``, ``"NFG"``, ``"NOG"``, ``"NIAF"``, ``"NOAF"``, ``"NP"``, ``"CIFG"``,
      ``"FGR"`` or an :class:`LSTMVariant`.
    input_gate, forget_gate, output_gate, input_activation, output_activation, peepholes, coupling: override
      the variant's flag (``None``: keep it); see :class:`LSTMVariant`.
    full_gate_recurrence: the same.
    forget_bias: added at initialisation to the forget gate's bias (to ``-`` the input gate's for CIFG, so that
      ``f = 1 - i`` starts open); ``None`` means 1.0 with a bias, 0.0 without (and without a forget gate).
    use_bias: whether the cell has the bias ``b``.
    activation: the block input and output nonlinearity (``"tanh"`` or a callable).
    gate_activation: the gates' nonlinearity (``"sigmoid"`` or a callable).
    peephole_init: initialiser of each ``[H]`` peephole vector (default zeros: the cell starts as an LSTM).
    gate_recurrent_init: initialiser of the FGR kernel ``w_g`` (default zeros).
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the ``K`` gate blocks of ``w_i: [F, K*H]``, ``w_h: [H, K*H]`` and ``b: [K*H]``; ``dtype``,
      ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with :class:`PeepholeLSTMParams` and ``LSTMCarry(h, c)`` (``FGRCarry(h, c, gates)``
    for FGR).

  Raises:
    ValueError: an unknown variant name (the message lists the valid ones) or a contradictory set of flags.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.peephole_lstm(4, variant="NOAF")
    >>> params = cell.init(jax.random.key(0), 3)
    >>> params.w_i.shape, params.p_f.shape
    ((3, 16), (4,))
    >>> carry, h = cell(params, cell.initial_carry(params, batch_shape=(2,)), jnp.ones((2, 3)))
    >>> h.shape
    (2, 4)
  """
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  opts = resolve("peephole_lstm", options)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  name = variant if isinstance(variant, str) else "custom"
  v = lstm_variant(variant) if isinstance(variant, str) else validate_variant(variant)
  overrides = dict(input_gate=input_gate, forget_gate=forget_gate, output_gate=output_gate,
                   input_activation=input_activation, output_activation=output_activation, peepholes=peepholes,
                   coupling=coupling, full_gate_recurrence=full_gate_recurrence)
  overrides = {k: val for k, val in overrides.items() if val is not None}
  if overrides:
    v = validate_variant(v._replace(**overrides))
    name = "custom"
  block_act = act if v.input_activation else (lambda z: z)
  cell_act = act if v.output_activation else (lambda z: z)
  computed = _computed_gates(v)
  blocks = tuple(k for k in ("i", "f", "g", "o") if k == "g" or k in computed)
  K, G = len(blocks), len(computed)
  forget_bias = _dense.forget_bias(forget_bias, use_bias, forget_gate=v.forget_gate)
  fgr = v.full_gate_recurrence
  carry_type, carry_features = (FGRCarry, dict(h=(H,), c=(H,), gates=(G * H,))) if fgr else (LSTMCarry, None)
  if "f" in blocks:
    forget_block = blocks.index("f")
  elif v.coupling == "cifg":  # f = 1 - i starts open when i starts closed
    forget_block, forget_bias = 0, -forget_bias
  else:
    forget_block = None

  def init_peepholes(keys, input_size):
    del input_size
    k_p, k_g = keys
    k_pi, k_pf, k_po = jax.random.split(k_p, 3)
    peep = {g: peephole_init(k, (H,), param_dtype) if g in v.peepholes else None
            for g, k in zip(GATES, (k_pi, k_pf, k_po))}
    w_g = _dense.init_blocks(k_g, gate_recurrent_init, G * H, H, G, param_dtype) if fgr else None
    return dict(p_i=peep["i"], p_f=peep["f"], p_o=peep["o"], w_g=w_g)

  init, initial_carry, input_transform, _, check_step = _dense.dense_parts(
      H, K, PeepholeLSTMParams, carry_type, opts, carry_features=carry_features, forget_block=forget_block,
      forget_bias=forget_bias, extra_keys=2, init_extra=init_peepholes, use_bias=use_bias)

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    z = u + _dense.recurrent(carry.h, params.w_h, dtype, precision)
    if fgr:
      zg = _dense.recurrent(carry.gates, params.w_g, dtype, precision)
      # Gate blocks of z get the gate recurrence; the block input g does not.
      parts = jnp.split(z, K, axis=-1)
      zg_parts = iter(jnp.split(zg, G, axis=-1))
      z = jnp.concatenate([p if k == "g" else p + next(zg_parts) for k, p in zip(blocks, parts)], axis=-1)
    c_prev = carry.c
    z = dict(zip(blocks, jnp.split(z.astype(c_prev.dtype), K, axis=-1)))
    peep = {"i": params.p_i, "f": params.p_f, "o": params.p_o}

    def gate(k, c_seen):
      pre = z[k]
      if k in v.peepholes:
        pre = pre + _lstm_common.diag(peep[k], c_seen)
      return gate_act(pre)

    i = gate("i", c_prev) if "i" in computed else None
    f = gate("f", c_prev) if "f" in computed else None
    if v.coupling == "cifg":
      assert i is not None  # the coupled gate is computed
      f = 1 - i
    elif v.coupling == "colah":
      assert f is not None
      i = 1 - f
    g = block_act(z["g"])
    c = (c_prev if f is None else f * c_prev) + (g if i is None else i * g)
    o = gate("o", c) if "o" in computed else None
    h = cell_act(c) if o is None else o * cell_act(c)
    if fgr:
      own = {k: a for k, a in (("i", i), ("f", f), ("o", o)) if a is not None}  # every computed gate
      gates = jnp.concatenate([own[k] for k in computed], axis=-1).astype(carry.gates.dtype)
      return FGRCarry(h=h, c=c, gates=gates), h
    return LSTMCarry(h=h, c=c), h

  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name=f"lstm_{name}")


def coupled_lstm(hidden_size: int, *, coupling: str = "colah", peepholes: Union[str, Sequence[str]] = (),
                 **kwargs: Any) -> Cell:
  r"""The LSTM with coupled forget and input gates.

  ``coupling="colah"`` (colah, "Understanding LSTM Networks"): only ``f`` is computed and
  ``c_t = f_t ⊙ c_{t-1} + (1 - f_t) ⊙ \tilde c_t``. ``coupling="cifg"`` (Greff et al. 2015): only ``i`` is
  computed and ``f_t = 1 - i_t``. No peepholes by default (colah's figure); ``peepholes="o"`` etc. adds them.
  Other keyword arguments are those of :func:`peephole_lstm`.

  >>> import jax, jaxrnn
  >>> jaxrnn.coupled_lstm(4).init(jax.random.key(0), 3).w_i.shape  # blocks [f, g, o]
  (3, 12)
  """
  if coupling not in ("colah", "cifg"):
    raise ValueError(f"coupling must be 'colah' or 'cifg', got {coupling!r}")
  cell = peephole_lstm(hidden_size, variant=LSTMVariant(coupling=coupling, peepholes=tuple(peepholes)), **kwargs)
  return cell._replace(name=f"coupled_lstm_{coupling}", config=None)  # never peephole_lstm's structure
