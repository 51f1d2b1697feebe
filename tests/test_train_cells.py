"""Every cell of `jaxrnn.train.model.CELLS` builds and takes one train step; layers/bidirectional/dropout compose."""

import jax
import numpy as np
import pytest

from jaxrnn.train import config, loop, model

TINY = {"task": {"name": "adding", "seq_len": 2}, "model": {"hidden_size": 4},
        "optimizer": {"name": "sgd", "lr": 0.1, "clip_norm": 0.0, "schedule": "constant"},
        "train": {"batch_size": 1, "steps": 1}}


@pytest.mark.parametrize("cell", config.CELL_NAMES)
def test_every_cell_trains_one_step(cell):
  # The jitted train step, compiled without XLA's backend optimisations: at these sizes about half the CPU time of
  # running it eagerly (jit off, op by op).
  run = loop.build(config.from_dict(TINY, [f'model.cell="{cell}"']))
  state = run.init_state()
  new, loss = jax.jit(run.train_step, compiler_options={"xla_backend_optimization_level": 0})(
      state, run.task.data["train"])
  assert np.isfinite(float(loss)) and int(new.step) == 1
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(state.params),
                                                   jax.tree_util.tree_leaves(new.params))]
  assert any(moved)


def test_cell_list_covers_the_library_and_errors_name_them():
  for name in ("peephole_lstm", "coupled_lstm", "lstm_nig", "lstm_cifg", "layer_norm_lstm", "lstmp", "mgu",
               "indrnn", "min_gru", "min_lstm", "lru", "rg_lru", "mlstm", "slstm", "irnn", "clockwork_rnn", "para_gru",
               "para_lstm"):
    assert name in config.CELL_NAMES
  with pytest.raises(config.ConfigError) as e:
    config.from_dict({"model": {"cell": "lstn"}})
  assert "choices: " + ", ".join(config.CELL_NAMES) in str(e.value)
  with pytest.raises(ValueError, match="model.cell = 'lstn' is not a known cell; choices: simple_rnn, lstm, gru"):
    model.make_cell("lstn", 4)


def test_layers_bidirectional_dropout_compose_with_the_combinators():
  cfg = config.from_dict(TINY, ["model.layers=2", "model.bidirectional=true", "model.dropout=0.25",
                                'model.cell="lstmp"'])
  m = model.make_model(cfg.model, loop.build(cfg).task)
  params = m.init(jax.random.key(0))
  assert len(params.layers) == 2 and type(params.layers[0]).__name__ == "BidirectionalParams"
  assert params.w_out.shape == (4, 1)  # lstmp outputs proj_size = 2 per direction
  x = jax.random.uniform(jax.random.key(1), (2, 3, 2))
  train = m.apply(params, x, jax.random.key(2))
  assert train.shape == (2, 1)
  np.testing.assert_array_equal(m.apply(params, x), m.apply(params, x))  # no key: no dropout, deterministic
  assert not np.array_equal(train, m.apply(params, x, jax.random.key(3)))
