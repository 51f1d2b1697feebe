"""The factories' shared options (``jaxrnn/cells/options.py``): declared once, every one takes effect, an unknown or
untaken one raises."""

from __future__ import annotations

import inspect
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.cells import grid_lstm as grid_lstm_module
from jaxrnn.cells import options as options_module
from jaxrnn.cells.options import DenseOptions, DtypeOptions, KernelOptions, RecurrentOptions


def constant(value):
  return lambda key, shape, dtype=jnp.float32: jnp.full(shape, value, dtype)


KERNEL, RECURRENT, BIAS = 0.25, 0.5, 0.75

# name -> (build(**options) -> object with init, the init's arguments after the key, the options it declares)
FACTORIES = {
    "lstm": (lambda **o: jaxrnn.lstm(4, **o), (3,), RecurrentOptions),
    "lstm_variant": (lambda **o: jaxrnn.lstm(4, variant="CIFG", **o), (3,), RecurrentOptions),
    "gru": (lambda **o: jaxrnn.gru(4, **o), (3,), RecurrentOptions),
    "simple_rnn": (lambda **o: jaxrnn.simple_rnn(4, **o), (3,), RecurrentOptions),
    "mgu": (lambda **o: jaxrnn.mgu(4, **o), (3,), RecurrentOptions),
    "slstm": (lambda **o: jaxrnn.slstm(4, **o), (3,), RecurrentOptions),
    "layer_norm_lstm": (lambda **o: jaxrnn.layer_norm_lstm(4, **o), (3,), RecurrentOptions),
    "clockwork_rnn": (lambda **o: jaxrnn.clockwork_rnn(4, num_modules=2, **o), (3,), RecurrentOptions),
    "peephole_lstm": (lambda **o: jaxrnn.peephole_lstm(4, **o), (3,), RecurrentOptions),
    "lstmp": (lambda **o: jaxrnn.lstmp(4, 2, **o), (3,), RecurrentOptions),
    "conv_lstm": (lambda **o: jaxrnn.conv_lstm(4, (3,), **o), ((5, 2),), RecurrentOptions),
    "depth_gated_lstm": (lambda **o: jaxrnn.depth_gated_lstm((4, 4), **o), (3,), RecurrentOptions),
    "para_gru": (lambda **o: jaxrnn.para_gru(4, **o), (3,), DenseOptions),
    "para_lstm": (lambda **o: jaxrnn.para_lstm(4, **o), (3,), DenseOptions),
    "min_gru": (lambda **o: jaxrnn.min_gru(4, **o), (3,), DenseOptions),
    "min_lstm": (lambda **o: jaxrnn.min_lstm(4, **o), (3,), DenseOptions),
    "grid_lstm": (lambda **o: jaxrnn.grid_lstm(4, 2, **o), (3,), DenseOptions),
    "grid_lstm_1d": (lambda **o: grid_lstm_module.grid_lstm_1d(4, 2, **o), (3,), DenseOptions),
    "grid_block": (lambda **o: grid_lstm_module.grid_block(4, 2, **o), (), DenseOptions),
    "indrnn": (lambda **o: jaxrnn.indrnn(4, **o), (3,), DenseOptions),
    "mlstm": (lambda **o: jaxrnn.mlstm(4, **o), (3,), DenseOptions),
    "rg_lru": (lambda **o: jaxrnn.rg_lru(4, **o), (3,), DenseOptions),
    "lru": (lambda **o: jaxrnn.lru(4, **o), (3,), DtypeOptions),
    "with_projection": (lambda **o: jaxrnn.with_projection(jaxrnn.lstm(4), 2, **o), (3,), DenseOptions),
    "with_input_transform": (lambda **o: jaxrnn.with_input_transform(jaxrnn.gru(4), 5, **o), (3,), DenseOptions),
    "additive_attention": (lambda **o: jaxrnn.additive_attention(4, location_kernel_size=3, **o), (4, 6),
                           KernelOptions),
    "luong_attention": (lambda **o: jaxrnn.luong_attention(**o), (4, 6), KernelOptions),
    "attention_wrapper": (lambda **o: jaxrnn.attention_wrapper(jaxrnn.gru(4), jaxrnn.dot_attention(), memory_size=4,
                                                               attention_layer_size=3, **o), (3,), KernelOptions),
}
UNTAKEN = {DtypeOptions: "kernel_init", KernelOptions: "bias_init", DenseOptions: "recurrent_kernel_init"}


def _factories_with_options():
  """Every public function of jaxrnn (and of the grid module) whose ``**options`` are one of the declared kinds."""
  found = {}
  for module in (jaxrnn, grid_lstm_module):
    for name in dir(module):
      fn = getattr(module, name)
      if name.startswith("_") or not inspect.isfunction(fn):
        continue
      hints = typing.get_type_hints(fn, include_extras=True)
      if "options" in hints and typing.get_origin(hints["options"]) is typing.Unpack:
        found[name] = typing.get_args(hints["options"])[0]
  return found


def test_every_factory_with_options_is_checked_here():
  declared = _factories_with_options()
  checked = {name: kind for name, (_, _, kind) in FACTORIES.items() if name in declared}
  assert declared == checked


def _leaves(build, init_args, **options):
  return jax.tree_util.tree_leaves(build(**options).init(jax.random.key(0), *init_args))


@pytest.mark.parametrize("name", FACTORIES)
def test_unknown_option_raises_naming_it(name):
  build, _, kind = FACTORIES[name]
  factory = name.removesuffix("_variant")
  with pytest.raises(TypeError, match=rf"^{factory}\(\) got an unexpected keyword argument 'kernal_init'; its "
                                      rf"options are .*\(jaxrnn.cells.options.{kind.__name__}\)"):
    build(kernal_init=constant(0.0))


@pytest.mark.parametrize("name", [n for n, (_, _, kind) in FACTORIES.items() if kind is not RecurrentOptions])
def test_option_the_factory_does_not_take_raises(name):
  build, _, kind = FACTORIES[name]
  untaken = UNTAKEN[kind]
  with pytest.raises(TypeError, match=f"unexpected keyword argument '{untaken}'"):
    build(**{untaken: constant(0.0)})


@pytest.mark.parametrize("name", FACTORIES)
def test_bad_dtype_raises(name):
  build, _, _ = FACTORIES[name]
  with pytest.raises(TypeError, match="param_dtype must be a floating dtype or None, got int32"):
    build(param_dtype=jnp.int32)
  with pytest.raises(TypeError, match="dtype must be a floating dtype or None, got int8"):
    build(dtype="int8")


@pytest.mark.parametrize("name", FACTORIES)
def test_every_option_takes_effect(name):
  build, init_args, kind = FACTORIES[name]
  keys = kind.__required_keys__ | kind.__optional_keys__
  leaves = _leaves(build, init_args, param_dtype=jnp.bfloat16)
  assert {leaf.dtype for leaf in leaves if jnp.issubdtype(leaf.dtype, jnp.floating)} >= {jnp.dtype(jnp.bfloat16)}
  if "kernel_init" not in keys:
    return
  inits = {"kernel_init": (KERNEL, constant(KERNEL)), "bias_init": (BIAS, constant(BIAS)),
           "recurrent_kernel_init": (RECURRENT, constant(RECURRENT))}
  inits = {k: v for k, v in inits.items() if k in keys}
  values = np.concatenate([np.ravel(leaf) for leaf in _leaves(build, init_args, **{k: f for k, (_, f) in
                                                                                     inits.items()})])
  defaults = np.concatenate([np.ravel(leaf) for leaf in _leaves(build, init_args)])
  for option, (value, _) in inits.items():
    assert (values == value).any(), f"{option} did not reach the params"
    assert not (defaults == value).any()


def test_defaults_are_declared_once():
  # a factory's params with no options equal those with the declared defaults passed explicitly
  d = options_module.DEFAULTS
  explicit = dict(kernel_init=d.kernel_init, recurrent_kernel_init=d.recurrent_kernel_init, bias_init=d.bias_init,
                  dtype=d.dtype, param_dtype=d.param_dtype, precision=d.precision)
  for name in ("lstm", "gru", "simple_rnn", "peephole_lstm"):
    build, init_args, _ = FACTORIES[name]
    for a, b in zip(_leaves(build, init_args), _leaves(build, init_args, **explicit)):
      np.testing.assert_array_equal(a, b)


def test_attention_departs_from_the_kernel_default():
  # the attention layers draw their kernels with Glorot uniform (as Keras and TF's seq2seq), not LeCun normal
  params = jaxrnn.luong_attention().init(jax.random.key(0), 4, 6)
  glorot = jaxrnn.luong_attention(kernel_init=jaxrnn.initializers.glorot_uniform()).init(jax.random.key(0), 4, 6)
  np.testing.assert_array_equal(params.w, glorot.w)


def test_conv_lstm_departs_from_the_recurrent_default():
  # ConvLSTM draws its recurrent kernel with LeCun normal (as Flax's Conv), not orthogonal blocks
  params = jaxrnn.conv_lstm(4, (3,)).init(jax.random.key(0), (5, 2))
  lecun = jaxrnn.conv_lstm(4, (3,), recurrent_kernel_init=jaxrnn.initializers.lecun_normal()).init(
      jax.random.key(0), (5, 2))
  np.testing.assert_array_equal(params.w_h, lecun.w_h)
