"""Learning-rate selection on English dev (xlt_utils.tuning): the table and the rule, on hand-made rows."""

import pandas as pd
import pytest

from xlt_utils import tuning
from xlt_utils.errors import XLTError


def _row(phase, task, lr, seed, value, model="synth-small", split="dev", lang="en", study="lr_selection",
         metric="accuracy"):
    return {"study": study, "run_id": f"{phase}/{model}__{task}__{lr}__s{seed}", "phase": phase, "model": model,
            "task": task, "split": split, "lang": lang, "metric": metric, "value": value, "seed": seed,
            "learning_rate": lr}


def _frame():
    rows = []
    # target: NLI at 1e-3 is bimodal (58, 36, 58 -> mean 50.67), at 3e-4 steady (96, 95, 97 -> 96);
    # POS 99.0 at both -> mean over tasks 74.83 vs 97.5: 3e-4 wins by 22.67
    for seed, v in zip((13, 14, 15), (58.0, 36.0, 58.0)):
        rows.append(_row("target", "synth_xnli", 1e-3, seed, v))
    for seed, v in zip((13, 14, 15), (96.0, 95.0, 97.0)):
        rows.append(_row("target", "synth_xnli", 3e-4, seed, v))
    for lr in (1e-3, 3e-4):
        for seed in (13, 14, 15):
            rows.append(_row("target", "synth_udpos", lr, seed, 99.0))
    # 1e-4 ran on NLI only (99.0): it must not win on the one task it has
    for seed in (13, 14, 15):
        rows.append(_row("target", "synth_xnli", 1e-4, seed, 99.0))
    # intermediate: 1e-3 mean 50, 1e-4 mean 60
    rows += [_row("intermediate", "synth_mnli", 1e-3, 13, 40.0), _row("intermediate", "synth_mnli", 1e-3, 14, 60.0),
             _row("intermediate", "synth_mnli", 1e-4, 13, 61.0), _row("intermediate", "synth_mnli", 1e-4, 14, 59.0)]
    # rows that must be ignored: test split, another language, another study, an eval phase, a secondary metric
    rows += [_row("target", "synth_xnli", 1e-3, 13, 0.0, split="test"),
             _row("target", "synth_xnli", 1e-3, 13, 0.0, lang="fr_like"),
             _row("target", "synth_xnli", 1e-3, 13, 0.0, study="paper"),
             _row("eval", "synth_xnli", 1e-3, 13, 0.0),
             _row("target", "synth_udpos", 1e-3, 13, 0.0, metric="f1")]
    return pd.DataFrame(rows)


def test_dev_table_means_sds_and_seeds():
    t = tuning.dev_table(_frame())
    nli = t[(t["task"] == "synth_xnli") & (t["learning_rate"] == 1e-3)].iloc[0]
    assert round(nli["mean"], 2) == 50.67 and round(nli["sd"], 2) == 12.70 and nli["n_seeds"] == 3
    assert nli["per_seed"] == "13: 58.0, 14: 36.0, 15: 58.0"
    inter = t[t["phase"] == "intermediate"].set_index("learning_rate")
    assert inter.loc[1e-3, "mean"] == 50.0 and inter.loc[1e-4, "mean"] == 60.0 and round(inter.loc[1e-4, "sd"], 2) == 1.41
    assert len(t) == 7  # NLI at three rates, POS at two, the intermediate task at two


def test_choose_takes_the_best_mean_over_tasks_among_rates_run_on_every_task():
    c = tuning.choose(tuning.dev_table(_frame())).set_index("phase")
    assert c.loc["target", "learning_rate"] == 3e-4  # 1e-4 (99.0 on NLI only) does not compete
    assert c.loc["target", "score"] == 97.5 and c.loc["target", "runner_up"] == 1e-3
    assert c.loc["target", "margin"] == 22.67  # 97.5 - (50.667 + 99) / 2
    assert c.loc["intermediate", "learning_rate"] == 1e-4 and c.loc["intermediate", "margin"] == 10.0


def test_no_tuning_rows_is_a_one_line_error_naming_the_grid():
    df = _frame()
    df["study"] = "paper"
    with pytest.raises(XLTError, match=r"no English dev rows of study 'lr_selection'.*studies/tuning/learning_rate.yaml"):
        tuning.dev_table(df)
    with pytest.raises(XLTError, match=r"missing columns learning_rate"):
        tuning.dev_table(_frame().drop(columns=["learning_rate"]))


@pytest.mark.parametrize("profile, model", [("tiny", "synth-tiny"), ("small", "synth-small"), ("medium", "synth-medium"),
                                            ("smoke", "synth-tiny")])
def test_the_tuning_grid_sweeps_each_phase_on_its_own(profile, model):
    from collections import Counter

    from xlt_utils import grid
    from xlt_utils.expand import study_files
    from xlt_utils.paths import STUDIES

    g = grid.expand(STUDIES / "tuning" / "learning_rate.yaml", profile)
    assert g.study == tuning.STUDY and {c.params["model"] for c in g.cells} == {model}
    inter = [c for c in g.cells if c.phase == "intermediate"]
    target = [c for c in g.cells if c.phase == "target"]
    seeds = 1 if profile == "smoke" else 3
    rates = 2 if profile == "smoke" else 3
    tasks = 1 if profile == "smoke" else 2
    assert Counter(c.params["learning_rate"] for c in inter) == Counter({lr: seeds for lr in
                                                                          {c.params["learning_rate"] for c in inter}})
    assert len(inter) == rates * seeds and len(target) == rates * seeds * tasks
    assert all(c.upstream.run_id.startswith("pretrain/") for c in target), "targets are tuned without an intermediate task"
    assert not any(c.phase == "target" and c.upstream.run_id.startswith("intermediate/") for c in g.cells)
    assert "lr_selection" not in study_files(), "the tuning grid is not one of the studies"
