"""The real-targets check: multilingual-e5-small fine-tuned in English on the offline-real world's real labelled
targets (``upos12``, ``review_sentiment``), scored zero-shot in every language beside the floors a zero-shot
number must clear, written as a page generated from the results (``docs/results/real_targets.md``).

Grid: ``studies/checks/real_targets.yaml`` (learning rates from ``studies/tuning/learning_rate.yaml``, profile
``e5-real``). Page: ``python -m xlt_utils real-targets [--metrics CSV] [--out PATH]`` after importing the bundles.

Intervals. Every seed is scored on the same test items, so a per-language mean over k seeds varies with the seed
(spread s over seeds) and with the draw of the items (shared by all seeds). The 95% interval is
``mean ± t(df) · sqrt(a + b)`` with ``a = s²/k`` (estimated with k-1 degrees of freedom), ``b = p(1-p)/n`` (p the
mean accuracy, n the number of test items; a binomial variance, taken as known) and ``df`` Welch-Satterthwaite's
``(a+b)² (k-1) / a²``, so three seeds that agree do not pay t(2) = 4.3 on the item part. For tagging n counts
sentences, not tokens (tokens of one sentence are not independent). That is an approximation: it is
conservative while a sentence's accuracy varies less than one Bernoulli draw, and not where errors cluster in long
sentences (token accuracy is a ratio over sentences). With one seed, or seeds that agree exactly, the interval is the item part
with the normal quantile. Floors that no seed enters (majority, probe, lexical) carry the item part alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from xlt_utils.analysis import seed_interval
from xlt_utils.errors import XLTError

STUDY = "real_targets"
TASKS = ("upos12", "review_sentiment")
COLUMNS = ("e5 English-trained", "majority", "lexical", "probe", "in-language")
PAGE = Path("docs/results/real_targets.md")


def interval(values: list[float], n: int) -> tuple[float, float, float]:
    """(mean, low, high) on the 0-100 scale for one language: ``values`` one per seed, ``n`` test items
    (:func:`xlt_utils.analysis.seed_interval`); the bounds are clipped to [0, 100]."""
    mean, lo, hi = seed_interval(values, max(n, 1))
    return mean, max(lo, 0.0), min(hi, 100.0)


def _primary(df: Any) -> Any:
    from xlt_utils.results import primary_metric

    keys = {t: primary_metric(t) for t in df["task"].unique()}
    return df[[m == keys[t] for m, t in zip(df["metric"], df["task"])]]


def rows_of(df: Any, study: str = STUDY) -> Any:
    """The primary-metric rows of ``study`` with a ``column`` naming what they are (see :data:`COLUMNS`);
    English dev rows keep ``split == "dev"``."""
    d = df[(df["study"] == study) & df["target_task"].isin(TASKS)]
    if d.empty:
        raise XLTError(f"no rows of study {study!r} in the results; import its bundles "
                       f"(python -m xlt_utils results --import docs/results/real_targets/*) or run "
                       f"`python -m xlt_utils grid studies/checks/real_targets.yaml --profile embedded-full`")
    d = _primary(d).copy()
    kind = d["kind"].fillna("")
    col = {"eval": "e5 English-trained", "target": "e5 English-trained"}
    d["column"] = [col.get(ph) if ph != "baselines" else
                   {"majority": "majority", "lexical": "lexical", "probe": "probe", "in_language": "in-language"}.get(k)
                   for ph, k in zip(d["phase"], kind)]
    return d[d["column"].notna()]


def table(df: Any, study: str = STUDY) -> Any:
    """One row per (task, language): n, label quality, and per column the mean [95% interval] and seed count."""
    import pandas as pd

    from xlt_utils.tasks import get_task

    d = rows_of(df, study)
    test = d[d["split"] != "dev"]
    out = []
    for task in TASKS:
        t = get_task(task)
        for lang in t.languages:
            cell = test[(test["target_task"] == task) & (test["lang"] == lang)]
            if cell.empty:
                continue
            n = int(cell["n_examples"].max())
            row: dict[str, Any] = {"task": task, "lang": lang, "labels": t.label_quality.get(lang, ""), "n": n}
            for c in COLUMNS:
                g = cell[cell["column"] == c].sort_values("seed")
                if g.empty:
                    row[c], row[f"{c} seeds"] = None, 0
                    continue
                vals = [float(v) for v in g.drop_duplicates("run_id")["value"]]
                seeded = c in ("e5 English-trained", "in-language")
                row[c] = interval(vals if seeded else vals[:1], n)
                row[f"{c} seeds"] = len(vals) if seeded else 0
            out.append(row)
    return pd.DataFrame(out)


def dev_table(df: Any, study: str = STUDY) -> Any:
    """English dev (the selection split) per task and column: mean, sd over seeds and seed count."""
    import pandas as pd

    d = rows_of(df, study)
    dev = d[(d["split"] == "dev") & (d["lang"] == "en")]
    out = []
    for (task, c), g in dev.groupby(["target_task", "column"]):
        vals = [float(v) for v in g.drop_duplicates("run_id")["value"]]
        sd = pd.Series(vals).std(ddof=1) if len(vals) > 1 else float("nan")
        out.append({"task": task, "column": c, "mean": sum(vals) / len(vals), "sd": sd, "n_runs": len(vals)})
    return pd.DataFrame(out)


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    mean, lo, hi = x
    return f"{mean:.1f} [{lo:.1f}, {hi:.1f}]"


def render(df: Any, study: str = STUDY, lr_table: Any = None, chosen: Any = None) -> str:
    """The page as Markdown (deterministic for the same rows)."""
    tab = table(df, study)
    dev = dev_table(df, study)
    d = rows_of(df, study)
    seeds = sorted({int(s) for s in d[d["column"] == "e5 English-trained"]["seed"].dropna()})
    in_seeds = sorted({int(s) for s in d[d["column"] == "in-language"]["seed"].dropna()})
    runs_line = (f"Runs: e5 English-trained, seeds {', '.join(map(str, seeds))}; in-language, "
                 f"{'seed' if len(in_seeds) == 1 else 'seeds'} {', '.join(map(str, in_seeds)) or 'none'}; majority, "
                 "lexical and probe are deterministic (one run each).")
    lines = [
        "# Real targets: multilingual-e5-small fine-tuned in English, zero-shot in other languages",
        "",
        ("Generated by `python -m xlt_utils real-targets` from the committed result bundles under "
        "`docs/results/real_targets/` (import them first; see `docs/results/README.md`). Do not edit by hand."),
        "",
        (f"e5 is fine-tuned on English training data only (no intermediate task), seeds {', '.join(map(str, seeds))}; "
        "the checkpoint with the best English dev score is kept. Every other column is a floor or a ceiling "
        "fitted without test data: *majority* (the most frequent English training label), *lexical* (a linear "
        "SVM on hashed character n-grams and words, trained in English: transfer through spelling alone), "
        "*probe* (logistic regression on the frozen e5's features, layer and C chosen on English dev) and "
        "*in-language* (e5 fine-tuned on the language's own training split, where one exists: a ceiling, not "
        "zero-shot). `upos12` uses the 12 universal tags of Petrov et al. (2012), coarser than XTREME's 17 UD "
        "tags (no AUX/PROPN/SCONJ distinctions), and is scored by token accuracy; silver labels are an "
        "automatic tagger's output, so a score there is agreement with that tagger."),
        "",
        ("Cells: mean over runs [95% interval]; the interval combines the spread over seeds with the sampling of "
         "the test items (`xlt_utils.real_targets`); n counts sentences (POS) or reviews. The `en (trained)` row "
         "is the training language's own test set: supervised, not zero-shot; every other row is zero-shot except "
         "the in-language column."),
        "",
        runs_line,
        "",
    ]
    for task in TASKS:
        sub = tab[tab["task"] == task]
        if sub.empty:
            continue
        lines += [f"## {task}", "", "| lang | labels | n | " + " | ".join(COLUMNS) + " |",
                  "|---|---|---:|" + "---:|" * len(COLUMNS)]
        for _, r in sub.iterrows():
            cells = [_fmt(r[c]) for c in COLUMNS]
            lang = r["lang"] + (" (trained)" if r["lang"] == "en" else "")
            lines.append(f"| {lang} | {r['labels'] or '–'} | {r['n']} | " + " | ".join(cells) + " |")
        if "max_seq_length" in d.columns:
            t = d[d["target_task"] == task]
            parts = []
            for what, rows in (("fine-tuning", t[t["phase"] == "target"]), ("evaluation", t[t["phase"] == "eval"]),
                               ("probe", t[t["column"] == "probe"]), ("in-language", t[t["column"] == "in-language"])):
                lengths = sorted({int(v) for v in rows["max_seq_length"].dropna()})
                if lengths:
                    parts.append(f"{what} {'/'.join(map(str, lengths))}")
            if parts:
                lines += ["", "Sub-word tokens read per text (longer texts are cut): " + ", ".join(parts)
                          + "; the lexical floor reads all of it."]
        dv = dev[dev["task"] == task]
        if not dv.empty:
            parts = []
            for _, r in dv.sort_values("column").iterrows():
                sd = "" if math.isnan(r["sd"]) else f" (sd {r['sd']:.1f} over {int(r['n_runs'])} runs)"
                parts.append(f"{r['column']} {r['mean']:.1f}{sd}")
            lines += ["", "English dev (selection split): " + "; ".join(parts) + "."]
        lines.append("")
    if lr_table is not None and not lr_table.empty:
        lines += ["## Learning rates, chosen on English dev", "",
                  ("From `studies/tuning/learning_rate.yaml`, profile `e5-real` (`python -m xlt_utils select-lr`): "
                  "per phase, the rate with the highest mean English dev score over its tasks."), "",
                  "| phase | task | learning rate | English dev | seeds |", "|---|---|---:|---:|---:|"]
        for _, r in lr_table.iterrows():
            lines.append(f"| {r['phase']} | {r['task']} | {r['learning_rate']:g} | {r['mean']:.1f} | "
                         f"{int(r['n_seeds'])} |")
        if chosen is not None and not chosen.empty:
            lines += ["", "Chosen: " + "; ".join(f"{r['phase']} {r['learning_rate']:g} (mean dev {r['score']:.2f}, "
                                                  f"runner-up {r['runner_up']:g} by {r['margin']:.2f}"
                                                  + ("; under 1 point with one seed: the rule's pick, not a measured "
                                                     "difference" if r["margin"] < 1 else "") + ")"
                                                  for _, r in chosen.iterrows()) + "."]
        lines.append("")
    return "\n".join(lines)


def main(metrics_csv: str | None = None, out: str | None = None) -> int:
    """Write the page (``python -m xlt_utils real-targets``)."""
    from xlt_utils import paths, tuning
    from xlt_utils.results import read_metrics

    df = read_metrics(metrics_csv)
    lr, chosen = None, None
    try:
        lr = tuning.dev_table(df)
        lr = lr[lr["model"] == "multilingual-e5-small"]
        chosen = tuning.choose(lr)
    except XLTError:
        pass
    text = render(df, lr_table=lr, chosen=chosen)
    path = Path(out) if out else paths.PROJECT_ROOT / PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0
