"""Results pages generated from the committed result bundles: ``docs/results/<study>.md``.

A page holds what the study's analysis notebook concludes, computed by the same functions the notebook calls
(:data:`CLAIMS`, :func:`xlt_utils.studies.floor_table`, :func:`xlt_utils.studies.answer`), from the rows the
bundles under ``docs/results/<study>__<profile>/`` hold once imported. Hand-written text elsewhere cites these
pages, never retypes their numbers; ``tests/test_pages.py`` checks that each committed page regenerates
byte-identically from its bundles.

    python -m xlt_utils results --import docs/results/paper__embedded-full/*
    python -m xlt_utils pages          # every study with bundles -> docs/results/<study>.md (+ .png), README table
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from xlt_utils.errors import XLTError, unknown

PROFILE = "embedded-full"
PAGE_DIR = Path("docs") / "results"


def _paper(df: Any, training: Any, efficiency: Any) -> Any:
    from xlt_utils import studies

    return studies.paper_claims(df, training)


def _rq1(df: Any, training: Any, efficiency: Any) -> Any:
    from xlt_utils import studies

    return studies.rq1_claims(df, training, efficiency)


def _rq2(df: Any, training: Any, efficiency: Any) -> Any:
    from xlt_utils import studies

    return studies.rq2_claims(df, training=training)


def _rq3(df: Any, training: Any, efficiency: Any) -> Any:
    from xlt_utils import studies

    return studies.rq3_claims(df, studies.budget_table(df, efficiency))


def _rq4(df: Any, training: Any, efficiency: Any) -> Any:
    from xlt_utils import studies

    return studies.rq4_claims(df)


def _rq5(df: Any, training: Any, efficiency: Any) -> Any:
    from xlt_utils import studies

    return studies.rq5_claims(df, studies.rq5_distance(df))


# Each study's claims table, as its analysis notebook computes it (notebooks/1x_<study>.ipynb).
CLAIMS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "paper": _paper, "rq1_batch_size": _rq1, "rq2_model_scale": _rq2, "rq3_efficiency": _rq3,
    "rq4_intermediate_data": _rq4, "rq5_source_language": _rq5,
}
NOTEBOOKS = {"paper": "10_paper", "rq1_batch_size": "11_rq1_batch_size", "rq2_model_scale": "12_rq2_model_scale",
             "rq3_efficiency": "13_rq3_efficiency", "rq4_intermediate_data": "14_rq4_intermediate_data",
             "rq5_source_language": "15_rq5_source_language"}


def _figure(study: str, df: Any, training: Any, efficiency: Any, config: Any) -> Path:
    """The study's main figure, drawn as its analysis notebook draws it (into ``outputs/figures/``)."""
    from xlt_utils import plots, results, studies

    if study == "paper":
        return plots.transfer_figure(df, results.transfer_table(df), config)
    if study == "rq1_batch_size":
        return plots.effect_figure(studies.batch_size_table(df, training), x="intermediate_batch_size",
                                   config=config, name="batch_size.png", xlabel="intermediate batch size", log_x=True,
                                   extra=studies.intermediate_cost(training), extra_y="train_seconds",
                                   extra_label="intermediate training (s)", extra_hue=["model", "intermediate_task"])
    if study == "rq2_model_scale":
        table = studies.scale_table(df, training)
        return plots.effect_figure(table, x="model", config=config, name="model_scale.png",
                                   xlabel="model (smallest first)", order=studies.size_order(table))
    if study == "rq3_efficiency":
        budget = studies.budget_table(df, efficiency)
        return plots.budget_figure(budget, studies.pareto(budget), config)
    if study == "rq4_intermediate_data":
        return plots.effect_figure(studies.data_table(df, training), x="n_train_examples", config=config,
                                   name="data_size.png", log_x=True,
                                   xlabel="distinct intermediate training examples (all languages)")
    kind = studies.rq5_distance(df)
    return plots.source_figure(studies.source_matrix(df), studies.source_distance(df, kind), config, kind)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: Any) -> str:
    """A pandas frame as a Markdown table (every row and column, text as it is; pipes escaped)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def bundle_dirs(study: str, profile: str = PROFILE, root: Path | None = None) -> list[Path]:
    """The committed bundles of (study, profile): ``docs/results/<study>__<profile>/*`` with a ``bundle.json``."""
    from xlt_utils import paths

    base = (root or paths.PROJECT_ROOT) / PAGE_DIR / f"{study}__{profile}"
    return sorted(p for p in base.glob("*") if (p / "bundle.json").exists()) if base.exists() else []


@dataclass(frozen=True)
class Analysed:
    """One study and profile read from ``outputs/results`` once, with its claims table: what a page, its figure and
    the README's row are made from."""

    config: Any
    df: Any
    training: Any
    efficiency: Any
    claims: Any


def analyse(study: str, profile: str = PROFILE) -> Analysed:
    """Load (study, profile)'s rows (bundles imported) and compute its claims as its analysis notebook does."""
    from xlt_utils import results

    if study not in CLAIMS:
        raise unknown("study", study, CLAIMS)
    config = SimpleNamespace(study=study, profile=profile)
    df, training, efficiency = results.load(config), results.load_training(config), results.load_efficiency(config)
    return Analysed(config, df, training, efficiency, CLAIMS[study](df, training, efficiency))


def render(a: Analysed, bundles: list[Path]) -> str:
    """The page of one study and profile as Markdown (deterministic for the same rows)."""
    from xlt_utils import studies

    study, profile, df, claims = a.config.study, a.config.profile, a.df, a.claims
    floors = studies.floor_table(df)
    answer = studies.answer(claims, df, a.config).data
    n_runs = int(df["run_id"].nunique()) if "run_id" in df.columns else 0
    lines = [f"# `{study}`: the `{profile}` results", "",
             (f"Generated by `python -m xlt_utils pages` from the {len(bundles)} result bundle(s) under "
              f"[`{study}__{profile}/`]({study}__{profile}) ({n_runs} runs with rows; import them first, see "
              "[README.md](README.md)), with the functions the analysis notebook "
              f"`notebooks/{NOTEBOOKS[study]}.ipynb` calls. Do not edit by hand: change the code or the bundles and "
              "regenerate."), "",
             ("How to read it: every choice among runs (a best task, a learning rate, a checkpoint) was made on "
              "English dev, never on test (`xlt_utils.selection`); an interval is 95% for its own claim and adds "
              "the variance of the seed means, of the language means and, where the languages share test items, "
              "of the items (`xlt_utils.analysis.crossed_interval`; the bundles hold no per-item predictions, so "
              "two arms' item errors are added as if unrelated, which errs wide unless they are negatively "
              "correlated, and within a target the languages' item errors are taken as fully correlated); a "
              "control is compared with its task only when both passed on an encoder trained for the same steps "
              "over the same examples."), "",
             "## Answer", "", answer, "", "## Claims", "", markdown_table(claims), "",
             "## Floors: is there anything to transfer?", "", markdown_table(floors), ""]
    by_cpu = studies.speedup_by_cpu(a.efficiency) if study == "rq3_efficiency" else None
    if by_cpu is not None and not by_cpu.empty:
        lines += ["## Speed-ups by CPU", "",
                  ("Each budget's speed-up over the full-budget model timed side by side with it, per CPU that timed "
                   "it (model and the vector extensions that change float, bfloat16 and int8 kernels), at each "
                   "timed batch size, averaged over that CPU's cells. The claims and the Pareto front use one CPU's "
                   "(`xlt_utils.studies.timing_cpu`), named in their notes when there is more than one."), "",
                  markdown_table(by_cpu), ""]
    lines += ["## Bundles", "", "| bundle | part (`--where`) | runs |", "|---|---|---:|"]
    for b in bundles:
        meta = json.loads((b / "bundle.json").read_text())
        part = ", ".join(f"`{w}`" for w in meta.get("where") or [])
        lines.append(f"| [`{b.name}`]({study}__{profile}/{b.name}) | {part or 'all'} | {len(meta.get('runs', []))} |")
    lines.append("")
    return "\n".join(lines)


def write(study: str, profile: str = PROFILE, out_dir: Path | None = None, figure: bool = False,
          analysed: Analysed | None = None) -> Path:
    """Render the page of (study, profile) from ``outputs/results`` (bundles imported; or from ``analysed``) and
    write it; with ``figure``, also the study's figure beside it (``<study>.png``)."""
    import shutil

    from xlt_utils import paths

    a = analysed or analyse(study, profile)
    path = (out_dir or paths.PROJECT_ROOT / PAGE_DIR) / f"{study}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(a, bundle_dirs(study, profile)), encoding="utf-8")
    if figure:
        shutil.copyfile(_figure(study, a.df, a.training, a.efficiency, a.config), path.with_suffix(".png"))
    return path


README_BEGIN, README_END = "<!-- results-table:begin -->", "<!-- results-table:end -->"


def readme_table(profile: str = PROFILE, analysed: Mapping[str, Analysed] | None = None) -> str:
    """The README's results at a glance: per study, what its committed bundles hold and the answer's tally and
    evidence grade (:func:`xlt_utils.studies.evidence`), linking the generated page; a study without bundles
    says so. ``analysed``: studies already read (:func:`analyse`), not read again."""
    from xlt_utils import studies

    lines = [("| study | question | committed runs | answer: claims supported / not supported / inconclusive | "
              "evidence | page |"), "|---|---|---|---|---|---|"]
    for study in CLAIMS:
        question = studies.QUESTIONS[study] + (f" *{studies.SCOPE[study]}*" if study in studies.SCOPE else "")
        if not bundle_dirs(study, profile):
            lines.append(f"| `{study}` | {question} | none yet | – | – | – |")
            continue
        a = (analysed or {}).get(study) or analyse(study, profile)
        df, claims = a.df, a.claims
        n_seeds = int(studies.scores(df)["seed"].dropna().nunique())
        tally = " / ".join(str(int((claims["verdict"] == v).sum()))
                           for v in ("supported", "not supported", "inconclusive"))
        seeds = f"{n_seeds} seed{'' if n_seeds == 1 else 's'}"
        lines.append(f"| `{study}` | {question} | `{profile}`: {df['run_id'].nunique()} runs, {seeds} | "
                     f"{tally} of {len(claims)} | {studies.evidence(claims, n_seeds)} | "
                     f"[{study}.md](docs/results/{study}.md) |")
    return "\n".join(lines)


def update_readme(readme: Path, profile: str = PROFILE, analysed: Mapping[str, Analysed] | None = None) -> bool:
    """Replace the README's generated results table (between :data:`README_BEGIN` and :data:`README_END`);
    whether it changed."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        raise XLTError(f"{readme} has no {README_BEGIN} ... {README_END} block for the results table")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_BEGIN}\n{readme_table(profile, analysed)}\n{README_END}{tail}"
    readme.write_text(new, encoding="utf-8")
    return new != text


def main(study: str | None = None, profile: str = PROFILE, out_dir: str | None = None) -> int:
    """Write the page of ``study`` (default: every study with committed bundles of ``profile``)
    (``python -m xlt_utils pages``)."""
    todo = [study] if study else [s for s in CLAIMS if bundle_dirs(s, profile)]
    if not todo:
        raise XLTError(f"no committed bundles of profile {profile!r} under {PAGE_DIR}/<study>__{profile}/; valid "
                       f"studies: {', '.join(CLAIMS)}")
    analysed = {s: analyse(s, profile) for s in todo}
    for s in todo:
        print(f"wrote {write(s, profile, Path(out_dir) if out_dir else None, figure=True, analysed=analysed[s])}")
    if not study and not out_dir:
        from xlt_utils import paths

        readme = paths.PROJECT_ROOT / "README.md"
        changed = update_readme(readme, profile, analysed)
        print(f"{'updated' if changed else 'unchanged'}: the results table of {readme}")
    return 0
