"""Figures for the analysis notebooks (seaborn), saved as PNG under ``outputs/figures/<study>/<profile>/``."""

from __future__ import annotations

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

    from xlt_utils.results import primary_metric, zero_shot

    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 1.4]})
    inter = table[table["intermediate_task"] != "none"]
    if not inter.empty:
        heat = inter.pivot_table(index="intermediate_task", columns="target_task", values="delta")
        sns.heatmap(heat, annot=True, fmt="+.1f", center=0, cmap="RdBu", cbar_kws={"label": "Δ zero-shot vs none"},
                    ax=axes[0])
        axes[0].set_title("Zero-shot change from intermediate training")
        axes[0].tick_params(axis="y", rotation=0)
    else:
        axes[0].set_axis_off()
    ev = zero_shot(df)
    from xlt_utils.tasks import get_task

    targets = sorted(ev["target_task"].unique())
    first = next((t for t in targets if get_task(t).format != "retrieval"), targets[0])
    sub = ev[ev["target_task"] == first].assign(series=lambda d: d["intermediate_task"])
    order = list(sub.groupby("lang")["value"].mean().sort_values(ascending=False).index)
    base = df[(df["phase"] == "baselines") & (df["target_task"] == first) & (df["lang"].isin(order))]
    base = base[base["metric"] == primary_metric(first)].assign(series=lambda d: "[" + d["kind"] + "]")
    sub = pd.concat([sub, base], ignore_index=True)
    sns.pointplot(data=sub, x="lang", y="value", hue="series", order=order, errorbar="sd",
                  dodge=0.3, markersize=3, linewidth=1, ax=axes[1])
    axes[1].legend(title="intermediate task [baseline]", fontsize=7)
    axes[1].set_title(f"{first} per language (English-trained; mean ± sd over seeds)")
    axes[1].set_xlabel("language")
    axes[1].set_ylabel("score")
    axes[1].tick_params(axis="x", rotation=45)
    fig.tight_layout()
    out = figure_dir(config) / "transfer.png"
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def show(path: Path) -> Any:
    """Display a saved figure inline (notebooks)."""
    from IPython.display import Image

    return Image(filename=str(path))


def distance_gap_figure(per: Any, summary: Any, config: Any, name: str = "distance_gap.png") -> Path:
    """Transfer gap (English minus language) against typological distance from English: one panel per task and
    distance kind, one colour per intermediate task, Spearman's rho with its 95% bootstrap interval in the title.
    Saved as ``name``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    panels = list(per.groupby(["task", "distance"], sort=True).groups)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (task, kind) in zip(axes[0], panels):
        sub = per[(per["task"] == task) & (per["distance"] == kind)]
        sns.regplot(data=sub, x="distance_value", y="gap", scatter=False, ci=None, color="0.6", ax=ax,
                    line_kws={"linewidth": 1})
        sns.scatterplot(data=sub, x="distance_value", y="gap", hue="intermediate_task", s=22, ax=ax)
        for _, r in sub[sub["intermediate_task"] == sub["intermediate_task"].iloc[0]].iterrows():
            ax.annotate(r["lang"], (r["distance_value"], r["gap"]), fontsize=6, alpha=0.7,
                        xytext=(2, 2), textcoords="offset points")
        s = summary[(summary["task"] == task) & (summary["distance"] == kind)]
        rho = "; ".join(f"{r.intermediate_task}: ρ={r.spearman:+.2f} [{r.spearman_lo:+.2f}, {r.spearman_hi:+.2f}]"
                        for r in s.itertuples())
        ax.set_title(f"{task}, {kind} distance\n{rho}", fontsize=8)
        ax.set_xlabel(f"{kind} distance from English")
        ax.set_ylabel("gap: English − language (points)")
        ax.legend(fontsize=6, title=None)
    fig.tight_layout()
    out = figure_dir(config) / name
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
