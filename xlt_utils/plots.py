"""Figures for the analysis notebooks (seaborn), saved as PNG under ``outputs/figures/<study>/<profile>/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xlt_utils import paths


def figure_dir(config: Any) -> Path:
    """``outputs/figures/<study>/<profile>/`` (created)."""
    d = paths.FIGURES / config.study / config.profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def transfer_figure(df: Any, table: Any, config: Any) -> Path:
    """Two panels: the change in mean zero-shot score from each intermediate task (vs none), per target task;
    and the score per language of each intermediate task on the first target task. Saved as ``transfer.png``.
    """
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from xlt_utils.multitask import display_names
    from xlt_utils.results import primary_metric, zero_shot

    sns.set_theme(style="whitegrid", context="paper")
    label = display_names([*table["intermediate_task"].unique(), *df["intermediate_task"].dropna().unique()])
    inter = table[table["intermediate_task"] != "none"]
    inter = inter.assign(intermediate_task=inter["intermediate_task"].map(label))  # "a+b": a short label
    heat = inter.pivot_table(index="intermediate_task", columns="target_task", values="delta") if len(inter) else None
    # the heatmap gets ~0.6 inch per target (an annotation such as "-67.4" is ~0.5 inch at 7 points) beside room
    # for its labels and colour bar; the per-language panel keeps its 7 inches, and its legend ~1.8 beside it
    heat_width = max(5.0, 2.8 + 0.6 * heat.shape[1]) if heat is not None else 5.0
    fig, axes = plt.subplots(1, 2, figsize=(heat_width + 8.8, 4.2), gridspec_kw={"width_ratios": [heat_width, 7.0]})
    if heat is not None:
        sns.heatmap(heat, annot=True, fmt="+.1f", annot_kws={"fontsize": 7}, center=0, cmap="RdBu",
                    cbar_kws={"label": "Δ zero-shot vs none"}, ax=axes[0])
        axes[0].set_title("Zero-shot change from intermediate training")
        axes[0].tick_params(axis="y", rotation=0)
    else:
        axes[0].set_axis_off()
    ev = zero_shot(df)
    from xlt_utils.tasks import get_task

    targets = sorted(ev["target_task"].unique())
    first = next((t for t in targets if get_task(t).format != "retrieval"), targets[0])
    sub = ev[ev["target_task"] == first].assign(series=lambda d: d["intermediate_task"].map(label))
    order = list(sub.groupby("lang")["value"].mean().sort_values(ascending=False).index)
    base = df[(df["phase"] == "baselines") & (df["target_task"] == first) & (df["lang"].isin(order))]
    base = base[base["metric"] == primary_metric(first)].assign(series=lambda d: "[" + d["kind"] + "]")
    sub = pd.concat([sub, base], ignore_index=True)
    sns.pointplot(data=sub, x="lang", y="value", hue="series", order=order, errorbar="sd",
                  dodge=0.3, markersize=3, linewidth=1, ax=axes[1])
    # outside the panel, right: inside it the legend covered the middle languages' points
    axes[1].legend(title="intermediate task [baseline]", fontsize=7, title_fontsize=8, loc="upper left",
                   bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[1].set_title(f"{first} per language (English-trained; mean ± sd over seeds)")
    axes[1].set_xlabel("language")
    axes[1].set_ylabel("score")
    axes[1].tick_params(axis="x", rotation=45)
    fig.tight_layout()
    out = figure_dir(config) / "transfer.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


MAX_COLUMNS = 4  # panels per figure row: the real study has up to 11 targets, which in one row is unreadable


def panel_axes(n: int, width: float, height: float, extra_rows: int = 0) -> tuple[Any, list[Any], list[Any]]:
    """A figure of ``n`` panels (``width`` x ``height`` inches each) wrapped at :data:`MAX_COLUMNS` per row, the
    unused cells hidden, and ``extra_rows`` whole rows below. Returns the figure, the ``n`` panel axes in reading
    order, and each extra row's axes."""
    import matplotlib.pyplot as plt

    cols = max(1, min(n, MAX_COLUMNS))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows + extra_rows, cols, figsize=(width * cols, height * (rows + extra_rows)),
                             squeeze=False)
    flat = [ax for row in axes[:rows] for ax in row]
    for ax in flat[n:]:
        ax.set_axis_off()
    return fig, flat[:n], [list(axes[rows + i]) for i in range(extra_rows)]


def show(path: Path) -> Any:
    """Display a saved figure inline (notebooks)."""
    from IPython.display import Image

    return Image(filename=str(path))


def distance_gap_figure(per: Any, summary: Any, config: Any, name: str = "distance_gap.png") -> Path:
    """Transfer gap (English minus language) against typological distance from English: one panel per task and
    distance kind, one colour per intermediate task, its Spearman rho with its 95% interval in the legend.
    Saved as ``name``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    panels = list(per.groupby(["task", "distance"], sort=True).groups)
    fig, axes, _ = panel_axes(len(panels), 4.2, 3.8)
    for ax, (task, kind) in zip(axes, panels):
        sub = per[(per["task"] == task) & (per["distance"] == kind)]
        sns.regplot(data=sub, x="distance_value", y="gap", scatter=False, ci=None, color="0.6", ax=ax,
                    line_kws={"linewidth": 1})
        sns.scatterplot(data=sub, x="distance_value", y="gap", hue="intermediate_task", s=22, ax=ax)
        for _, r in sub[sub["intermediate_task"] == sub["intermediate_task"].iloc[0]].iterrows():
            ax.annotate(r["lang"], (r["distance_value"], r["gap"]), fontsize=6, alpha=0.7,
                        xytext=(2, 2), textcoords="offset points")
        # each intermediate task's Spearman rho in its legend entry (in the title, five of them ran into the
        # neighbouring panels)
        s = summary[(summary["task"] == task) & (summary["distance"] == kind)]
        rho = {r.intermediate_task: f"ρ={r.spearman:+.2f} [{r.spearman_lo:+.2f}, {r.spearman_hi:+.2f}]"
               for r in s.itertuples()}
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [f"{lab}: {rho[lab]}" if lab in rho else lab for lab in labels], fontsize=6,
                  title="intermediate task: Spearman ρ [95%]", title_fontsize=6)
        ax.set_title(f"{task}, {kind} distance", fontsize=9)
        ax.set_xlabel(f"{kind} distance from English")
        ax.set_ylabel("gap: English − language (points)")
    fig.tight_layout()
    out = figure_dir(config) / name
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _save(fig: Any, config: Any, name: str) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = figure_dir(config) / name
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def effect_figure(summary: Any, x: str, config: Any, name: str, xlabel: str, log_x: bool = False,
                  hue: str = "intermediate_task", extra: Any = None, extra_y: str | None = None,
                  extra_label: str = "", order: Sequence[str] | None = None,
                  extra_hue: str | Sequence[str] | None = None) -> Path:
    """The intermediate-task effect (mean zero-shot change vs no intermediate task, 95% interval over
    languages, seeds and shared items) against a condition ``x``, one panel per target task; optionally a second row with a cost
    (``extra[extra_y]`` against ``x``, one line per ``extra_hue``, default ``hue``). A categorical ``x`` is drawn in
    ``order`` (e.g. models by size) when given. Saved as ``name``."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    targets = sorted(summary["target_task"].unique())
    rows = 2 if extra is not None and extra_y is not None and not extra.empty else 1
    fig, axes, below = panel_axes(len(targets), 4.4, 3.4, extra_rows=rows - 1)
    # several models (e.g. rq1 embedded-full: e5-small and synth-small): a panel names its model when it has one, and
    # draws one line per (model, hue) when it has several, so that no line joins two models' points
    per_model = x != "model" and hue != "model" and "model" in summary.columns and summary["model"].nunique() > 1
    # one colour and (categorical x) one sideways offset per line across all panels, so a task looks the same in each
    every = [str(k) for k in dict.fromkeys(summary[hue].astype(str))]
    colour = {k: f"C{i % 10}" for i, k in enumerate(every)}
    for ax, t in zip(axes, targets):
        s = summary[summary["target_task"] == t].copy()
        models = list(dict.fromkeys(s["model"])) if per_model else []
        lines = ["model", hue] if len(models) > 1 else hue
        for key, g in s.groupby(lines, dropna=False):
            h = str(key[-1] if isinstance(key, tuple) else key)
            key = " / ".join(map(str, key)) if isinstance(key, tuple) else key
            if order is not None:  # categorical: each hue a little to the side, so that intervals do not overlap
                pos = {v: j for j, v in enumerate(order)}
                g = g.assign(_pos=g[x].map(pos)).sort_values("_pos")
                xs = g["_pos"] + (0.3 * (every.index(h) / (len(every) - 1) - 0.5) if len(every) > 1 else 0.0)
            else:
                g = g.sort_values(x)
                xs = g[x].astype(float) if log_x else g[x] if g[x].dtype != object else g[x].astype(str)
            ax.errorbar(xs, g["mean"], yerr=[(g["mean"] - g["ci_lo"]).fillna(0), (g["ci_hi"] - g["mean"]).fillna(0)],
                        marker="o", capsize=3, label=str(key), color=None if len(models) > 1 else colour[h])
        if order is not None:
            ax.set_xticks(range(len(order)), list(order))
            ax.set_xlim(-0.6, len(order) - 0.4)
        ax.axhline(0, color="0.4", linewidth=0.8, linestyle="--")
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_title(f"{t} ({models[0]})" if len(models) == 1 else t)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Δ zero-shot vs no intermediate task")
        ax.legend(fontsize=7, title=None)
    if rows == 2:
        for ax in below[0][1:]:
            ax.set_axis_off()
        ax = below[0][0]
        by = extra_hue or hue
        for key, g in extra.groupby(list(by) if not isinstance(by, str) else by, dropna=False):
            g = g.sort_values(x)
            ax.plot(g[x].astype(float), g[extra_y], marker="s",
                    label=" / ".join(map(str, key)) if isinstance(key, tuple) else str(key))
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(extra_label or extra_y)
        ax.legend(fontsize=7, title=None)
    return _save(fig, config, name)


# Where a point's label may go, in points from the point: right-above first, then right-below, left-above,
# left-below, then further up or down.
_LABEL_SLOTS = ((3, 3), (3, -11), ("left", 3), ("left", -11), (3, 13), (3, -21))


def label_offsets(xy: Sequence[tuple[float, float]], widths: Sequence[float], height: float,
                  pad: float = 1.0) -> list[tuple[float, float]]:
    """Offsets (in points) for point labels so that no two label boxes overlap: each label, taken in order of x,
    goes to the first slot of ``_LABEL_SLOTS`` whose box (``widths[i]`` x ``height``, its lower-left corner at
    the point plus the offset) misses every label already placed; the last slot if none does. ``xy`` are the
    points' positions in points (display units), so the check is in the units the labels are drawn in."""
    placed: list[tuple[float, float, float, float]] = []
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(xy)
    for i in sorted(range(len(xy)), key=lambda k: (xy[k][0], xy[k][1])):
        x, y = xy[i]
        w = widths[i]
        for slot in _LABEL_SLOTS:
            dx = -3 - w if slot[0] == "left" else float(slot[0])
            dy = float(slot[1])
            box = (x + dx, y + dy, x + dx + w, y + dy + height)
            if not any(box[0] < b[2] + pad and b[0] < box[2] + pad and box[1] < b[3] + pad and b[1] < box[3] + pad
                       for b in placed):
                break
        placed.append(box)
        out[i] = (dx, dy)
    return out


def _annotate_without_overlap(ax: Any, xy: Sequence[tuple[float, float]], texts: Sequence[str],
                              fontsize: float = 7) -> None:
    """Label points so that the labels do not overlap one another (see ``label_offsets``). Label widths are
    estimated from the character count (0.6 em per character), which is close for the default sans-serif font."""
    import numpy as np

    if not xy:
        return
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits before reading the data transform
    to_points = 72.0 / ax.figure.dpi
    disp = ax.transData.transform(np.asarray(xy, dtype=float)) * to_points
    widths = [0.6 * fontsize * len(t) for t in texts]
    offsets = label_offsets([tuple(p) for p in disp], widths, height=1.2 * fontsize)
    for (px, py), t, (dx, dy) in zip(xy, texts, offsets):
        ax.annotate(t, (px, py), fontsize=fontsize, xytext=(dx, dy), textcoords="offset points")


def budget_figure(budget: Any, front: Any, config: Any, cost: str | None = None,
                  name: str = "budget.png") -> Path:
    """Mean zero-shot score against inference cost per evaluation variant (colour: intermediate condition; label:
    the variant), with the Pareto front as a line; one panel per (model, target). Saved as ``name``. ``cost``
    None: the front's (:func:`xlt_utils.studies.budget_cost`)."""
    import seaborn as sns

    from xlt_utils.studies import budget_cost

    cost = budget_cost(budget) if cost is None else cost

    sns.set_theme(style="whitegrid", context="paper")
    b = budget.dropna(subset=[cost]) if cost in budget.columns else budget.iloc[0:0]
    panels = sorted(set(zip(b["model"], b["target_task"]))) or [("", "")]
    fig, axes, _ = panel_axes(len(panels), 5.2, 4)
    for ax, (m, t) in zip(axes, panels):
        s = b[(b["model"] == m) & (b["target_task"] == t)]
        if s.empty:
            ax.text(0.5, 0.5, "no timed evaluation in this profile", ha="center", va="center")
            ax.set_axis_off()
            continue
        sns.scatterplot(data=s, x=cost, y="mean", hue="intermediate_task", style="intermediate_task", s=50, ax=ax)
        f = front[(front["model"] == m) & (front["target_task"] == t)].sort_values(cost)
        ax.plot(f[cost], f["mean"], color="0.3", linewidth=1, linestyle="--", label="Pareto front")
        _annotate_without_overlap(ax, [(getattr(r, cost), r.mean) for r in s.itertuples()],
                                  [str(r.variant) for r in s.itertuples()], fontsize=7)
        ax.set_xlabel({"latency_ms_b1": "latency per example, batch 1, p50 (ms)",
                       "relative_latency_b1": "latency at batch 1, p50, relative to the full model timed beside it",
                       "gflops_per_example": "GFLOPs per example"}.get(cost, cost)
                      + (f"\ntimed on {s['timed_on'].dropna().iloc[0]}" if "timed_on" in s.columns
                         and cost != "gflops_per_example" and s["timed_on"].notna().any() else ""))
        ax.set_ylabel("mean zero-shot score")
        ax.set_title(f"{m} · {t}")
        ax.legend(fontsize=7, title=None)
    return _save(fig, config, name)


def source_figure(matrix: Any, per: Any, config: Any, kind: str, name: str = "source_language.png") -> Path:
    """One row per target task. Left: source language x evaluation language heatmap of the intermediate-task
    effect. Right: zero-shot score against the language's distance from the source, one colour per source (the
    same colours in every row)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    targets = sorted(matrix.columns.get_level_values(0).unique())
    fig, axes = plt.subplots(len(targets), 2, figsize=(13, 4.2 * len(targets)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    sources = sorted(per["intermediate_train_language"].unique())
    palette = dict(zip(sources, sns.color_palette(n_colors=len(sources))))
    for row, target in zip(axes, targets):
        sns.heatmap(matrix[target], annot=True, fmt="+.0f", center=0, cmap="RdBu", ax=row[0],
                    cbar_kws={"label": "Δ vs no intermediate task"}, annot_kws={"fontsize": 6})
        row[0].set_title(f"{target}: effect of intermediate training, by source language")
        row[0].set_xlabel("evaluation language")
        row[0].set_ylabel("intermediate source language")
        sub = per[per["target_task"] == target]
        sns.scatterplot(data=sub, x="distance_from_source", y="value", hue="intermediate_train_language",
                        hue_order=sources, palette=palette, s=26, ax=row[1])
        row[1].set_title(f"{target}: zero-shot score by distance from the source")
        row[1].set_xlabel(f"{kind} distance of the evaluation language from the source")
        row[1].set_ylabel("zero-shot score")
        row[1].legend(title="source", fontsize=7)
    return _save(fig, config, name)
