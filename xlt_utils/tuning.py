"""Learning-rate selection on English dev (``studies/tuning/learning_rate.yaml``, ``python -m xlt_utils select-lr``).

The tuning grid trains each fine-tuning phase at several learning rates and seeds. Every training run records
its best English dev score (``split == "dev"``, ``lang == "en"``, the task's primary metric) in
``metrics.csv``; this module tabulates them and applies the rule: per model and phase, the learning rate with the
highest mean over the phase's tasks of the mean over seeds. Test sets play no part.
"""

from __future__ import annotations

from typing import Any

from xlt_utils.errors import XLTError

STUDY = "lr_selection"
PHASES = ("intermediate", "target")


def dev_table(df: Any) -> Any:
    """English dev scores of the tuning runs: one row per (model, phase, task, learning rate) with the mean and
    sample sd over seeds (unrounded), the number of seeds and the per-seed values (``"13: 58.5, 14: 58.1"``)."""
    import pandas as pd

    need = {"study", "phase", "model", "task", "split", "lang", "metric", "value", "seed", "learning_rate"}
    missing = sorted(need - set(df.columns))
    if missing:
        raise XLTError(f"metrics are missing columns {', '.join(missing)}; collect them with `python -m xlt_utils results`")
    from xlt_utils.selection import dev_rows

    rows = dev_rows(df[df["study"] == STUDY], PHASES)
    if rows.empty:
        raise XLTError(f"no English dev rows of study {STUDY!r} in the results; run the grids of "
                       "studies/tuning/learning_rate.yaml, then `python -m xlt_utils results`")
    out = []
    for (model, phase, task, lr), g in rows.groupby(["model", "phase", "task", "learning_rate"]):
        g = g.sort_values("seed")
        out.append({"model": model, "phase": phase, "task": task, "learning_rate": float(lr),
                    "mean": float(g["value"].mean()),
                    "sd": float(g["value"].std(ddof=1)) if len(g) > 1 else float("nan"),
                    "n_seeds": int(g["seed"].nunique()),
                    "per_seed": ", ".join(f"{int(s)}: {v:.1f}" for s, v in zip(g["seed"], g["value"]))})
    return pd.DataFrame(out).sort_values(["model", "phase", "task", "learning_rate"]).reset_index(drop=True)


def choose(table: Any) -> Any:
    """Per (model, phase): the learning rate with the highest mean over tasks of the per-task mean dev score.

    Only learning rates run for every task of the (model, phase) compete, so a rate tried on fewer tasks cannot win
    on an easier task alone. Columns: model, phase, learning_rate, score (that mean), runner_up, margin.
    """
    import pandas as pd

    out = []
    for (model, phase), g in table.groupby(["model", "phase"]):
        tasks = set(g["task"])
        complete = [lr for lr, h in g.groupby("learning_rate") if set(h["task"]) == tasks]
        if not complete:
            continue
        scores = (g[g["learning_rate"].isin(complete)].groupby("learning_rate")["mean"].mean()
                  .sort_values(ascending=False))
        best, score = float(scores.index[0]), float(scores.iloc[0])
        runner = float(scores.index[1]) if len(scores) > 1 else float("nan")
        out.append({"model": model, "phase": phase, "learning_rate": best, "score": round(score, 2),
                    "tasks": ", ".join(sorted(tasks)), "runner_up": runner,
                    "margin": round(score - float(scores.iloc[1]), 2) if len(scores) > 1 else float("nan")})
    return pd.DataFrame(out)


def main(results_csv: str | None = None) -> int:
    """Print the dev table and the chosen learning rates (``python -m xlt_utils select-lr``)."""
    import pandas as pd

    from xlt_utils.results import read_metrics

    table = dev_table(read_metrics(results_csv))
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 200):
        print("English dev score by learning rate (mean and sd over seeds):")
        print(table.round({"mean": 2, "sd": 2}).to_string(index=False))
        print("\nChosen (highest mean over tasks):")
        print(choose(table).to_string(index=False))
    return 0
