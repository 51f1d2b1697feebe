"""Reports of runs: the summary of a run's metrics, a plain-text table of summaries, loss-curve and confusion-matrix
plots (matplotlib, imported when a plot is drawn)."""

from __future__ import annotations

import json
import pathlib
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from jaxrnn import _optional

if TYPE_CHECKING:  # annotations only
  from jaxrnn.train.config import Config
  from jaxrnn.train.step import Run

# The summary's fixed columns; a task's held-out metrics (accuracy, exact_acc, ...) follow them.
COLUMNS = ("name", "task", "cell", "params", "steps", "metric", "train_loss", "eval_loss", "best_eval", "baseline",
           "steps_per_s")


def summarize(cfg: Config, rows: list, *, params: int, baseline: float, metric: str, steps: int,
              seconds: Optional[float], steps_run: int) -> dict:
  """A run's summary from its ``metrics.jsonl`` rows: the last train and eval losses, the best eval loss, the last
  value of each held-out metric, and ``steps_per_s`` of this call (``None`` when it ran no step: a finished run
  resumed; a value that was not measured is ``None``, never NaN)."""
  train_rows = [r["loss"] for r in rows if r["split"] == "train" and "loss" in r]
  eval_rows = [r["loss"] for r in rows if r["split"] == "eval" and "loss" in r]
  extra = {r["metric"]: r["value"] for r in rows if "metric" in r}
  return {
      "task": cfg.task.name,
      "cell": cfg.model.cell,
      "params": params,
      "steps": steps,
      "train_loss": train_rows[-1] if train_rows else None,
      "eval_loss": eval_rows[-1] if eval_rows else None,
      "best_eval": min(eval_rows) if eval_rows else None,
      "baseline": baseline,
      "metric": metric,
      "steps_per_s": steps_run / seconds if seconds and steps_run else None,
      **extra,
  }


def format_table(summaries: list) -> str:
  """A plain-text table of summaries, one row each (``-`` where a value is missing)."""
  cols = list(COLUMNS) + sorted({k for s in summaries for k in s} - set(COLUMNS))
  fmt = lambda v: "-" if v is None or v == "" else (f"{v:.4f}" if isinstance(v, float) else str(v))
  table = [cols] + [[fmt(s.get(c)) for c in cols] for s in summaries]
  widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
  lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def _pyplot():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top (optional and slow to import: only for plots)
  except ImportError as e:
    raise _optional.missing("jaxrnn.train's plots", "matplotlib", "train") from e
  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_curves(curves: dict, path: str | pathlib.Path, *, baseline: Optional[float] = None,
                metric: str = "loss") -> pathlib.Path:
  """Draws train (thin) and eval (thick) loss curves of ``{label: metrics rows}`` into a PNG at ``path``."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
  for i, (label, rows) in enumerate(curves.items()):
    color = f"C{i}"
    styles: Dict[str, Dict[str, Any]] = {"train": dict(alpha=0.45, lw=1), "eval": dict(lw=2, marker="o", ms=3)}
    for split, kw in styles.items():
      pts = [(r["step"], r["loss"]) for r in rows if r["split"] == split and "loss" in r]
      if pts:
        ax.plot(*zip(*pts), color=color, label=f"{label} ({split})", **kw)
  if baseline is not None:
    ax.axhline(baseline, color="gray", ls="--", lw=1, label=f"baseline {baseline:.3f}")
  ax.set_xlabel("step")
  ax.set_ylabel(metric)
  ax.set_yscale("log")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  path = pathlib.Path(path)
  fig.savefig(path)
  plt.close(fig)
  return path


def confusion_matrix(labels: Any, predictions: Any, num_classes: int) -> np.ndarray:
  """``int64[C, C]``: entry ``[i, j]`` counts examples of class ``i`` predicted as ``j``."""
  m = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(m, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
  return m


def write_confusion(run: Run, params: Any, run_dir: str | pathlib.Path, *, plot: bool = True) -> dict:
  """A classifier's confusion matrix on its whole held-out split: ``confusion.json`` (classes, matrix, accuracy)
  and ``confusion.png``; returns ``{label: path}``."""
  if run.outputs is None or run.task.classes is None:
    raise ValueError(f"a confusion matrix needs a classifier task (classes, and eval_size: outputs over the whole "
                     f"held-out split); task {run.task.name!r} is not one")
  logits, labels = run.outputs(params, run.task.data["val"])
  preds = np.asarray(logits).argmax(-1)
  m = confusion_matrix(np.asarray(labels), preds, run.task.output_size)
  classes = list(run.task.classes)
  run_dir = pathlib.Path(run_dir)
  out = {"confusion": str(run_dir / "confusion.json")}
  (run_dir / "confusion.json").write_text(json.dumps(
      {"classes": classes, "matrix": m.tolist(), "accuracy": float(np.trace(m) / m.sum())}) + "\n")
  if plot:
    plt = _pyplot()
    size = 3 + 0.35 * len(classes)
    fig, ax = plt.subplots(figsize=(size, size), dpi=110)
    ax.imshow(m, cmap="Blues")
    for i in range(len(classes)):
      for j in range(len(classes)):
        ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{run.task.name}: accuracy {np.trace(m) / m.sum():.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(run_dir / "confusion.png")
    plt.close(fig)
    out["confusion plot"] = str(run_dir / "confusion.png")
  return out
