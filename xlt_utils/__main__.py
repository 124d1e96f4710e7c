"""Command line: ``python -m xlt_utils <command>``; ``--help`` lists the commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xlt_utils.errors import XLTError


def _cmd_tasks(args: argparse.Namespace) -> int:
    from xlt_utils.tasks import list_tasks

    tasks = list_tasks(world=args.world, role=args.role)
    if args.json:
        import json

        print(json.dumps([t.summary() for t in tasks], indent=1, default=str))
        return 0
    def cut(text: str, n: int) -> str:
        return text if len(text) <= n or args.long else text[: n - 3] + "..."

    def size(t) -> str:  # train/dev/test records over all languages, where the world recorded them
        counts = t.source.get("counts") or {}
        if not any(counts.get(s) for s in ("train", "dev", "test")):
            return "-"
        return "/".join(str(sum((counts.get(s) or {}).values())) for s in ("train", "dev", "test"))

    def langs(t) -> str:  # silver-labelled languages marked with *
        return " ".join(lang + ("*" if t.label_quality.get(lang) == "silver" else "") for lang in t.languages)

    rows = [("task", "world", "format", "role", "metric", "train", "train/dev/test", "#lang", "source",
             "languages")]
    for t in tasks:
        source = str(t.source.get("summary") or t.source.get("hub_id") or t.source.get("dir") or "-")
        rows.append((t.name, t.world, t.format, t.role, t.metric, cut(t.train_source or "-", 24), size(t),
                     str(len(t.languages)), cut(source, 48), cut(langs(t), 48)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"{len(tasks)} tasks")
    if any(t.label_quality for t in tasks):
        print("* silver labels (an automatic tagger's output); every other language of a task with label_quality "
              "is gold (human annotation)")
    return 0


def _cmd_setup_assets(args: argparse.Namespace) -> int:
    from xlt_utils import assets

    assets.setup_all(force=args.force)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from xlt_utils import bench

    return bench.main(args)


def _cmd_synth_sanity(args: argparse.Namespace) -> int:
    from xlt_utils.synth import sanity

    if args.merge:
        df = sanity.merge(args.merge)
        if args.out:
            df.to_csv(args.out, index=False)
        sanity.summarize(df)
        return 0
    if args.encoder is None:
        raise XLTError("synth-sanity needs --encoder DIR (a synth encoder folder), or --merge CSV ... to summarise runs")
    sanity.run(args.encoder, args.seeds, args.budget, args.out, lr=sanity.LR if args.lr is None else args.lr)
    return 0


def _cmd_synth_negation(args: argparse.Namespace) -> int:
    from xlt_utils.synth import diagnostics

    diagnostics.main(args.model, args.languages, args.max_examples, form=args.form, breakdown=args.breakdown)
    return 0


def _cmd_synth_checkpoint(args: argparse.Namespace) -> int:
    from xlt_utils.synth import checkpoints

    if args.sums:
        print(checkpoints.write_sums())
        return 0
    if args.name is None:
        raise XLTError(f"name a checkpoint: {', '.join(checkpoints.names())} (or --sums)")
    checkpoints.recipe(args.name)  # unknown names fail before any work
    from xlt_utils import paths

    out = Path(args.out) if args.out else paths.OUTPUTS / "checkpoints" / args.name
    if checkpoints.has_weights(out):
        raise XLTError(f"{out} already holds an encoder; give another --out (nothing is overwritten)")
    checkpoints.regenerate(args.name, out, threads=args.threads, device=args.device, save_every=args.save_every)
    return 0


def _cmd_select_lr(args: argparse.Namespace) -> int:
    from xlt_utils import tuning

    return tuning.main(args.results)


def _cmd_real_targets(args: argparse.Namespace) -> int:
    from xlt_utils import real_targets

    return real_targets.main(args.results, args.out)


def _cmd_pages(args: argparse.Namespace) -> int:
    from xlt_utils import pages

    return pages.main(args.study, args.profile, args.out)


def _cmd_trace(args: argparse.Namespace) -> int:
    from xlt_utils import trace

    return trace.main(args.files or None, args.check)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m xlt_utils``."""
    p = argparse.ArgumentParser(prog="python -m xlt_utils", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("tasks", help="list the task registry")
    t.add_argument("--world", default=None, help="only this world (synth, offline-real, xtreme, local)")
    t.add_argument("--role", default=None, help="only target or intermediate tasks")
    t.add_argument("--json", action="store_true", help="print JSON instead of a table")
    t.add_argument("--long", action="store_true", help="do not shorten the source and language columns")
    t.set_defaults(func=_cmd_tasks)

    s = sub.add_parser("setup-assets", help="build offline assets (converted encoders, corpora); idempotent")
    s.add_argument("--force", action="store_true", help="rebuild even when present")
    s.set_defaults(func=_cmd_setup_assets)

    b = sub.add_parser("bench", help="throughput benchmarks (our loop vs the Hugging Face Trainer)")
    b.add_argument("what", choices=["train", "gpu"],
                   help="train (our loop vs the Trainer, and evaluation) or gpu (the GPU checks: XLM-R large and XL, "
                        "packed vs the Trainer, then torch.compile, each step time-limited; JSON under --out)")
    b.add_argument("--json", action="store_true", help="one JSON object per comparison")
    b.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    b.add_argument("--model", default="tiny",
                   help="tiny (a small XLM-R; ours vs the Trainer), xlmr-base-random / xlmr-large-random / "
                        "xlmr-xl-random (the real architectures with random weights: MFU and tokens/s on a GPU) or "
                        "e5-small (the converted real encoder; frozen vs trainable word embeddings)")
    b.add_argument("--examples", type=int, default=None, help="training examples per side (default 1024)")
    b.add_argument("--repeats", type=int, default=3, help="interleaved repetitions per side (median reported)")
    b.add_argument("--seq-len", type=int, default=None,
                   help="maximum sequence length (default 128 for the xlmr-*-random models, else 256)")
    b.add_argument("--batch-size", type=int, default=None,
                   help="training batch per side (default 64 for the xlmr-*-random models, else 32)")
    b.add_argument("--compile", action="store_true", help="our loop with torch.compile (TrainConfig.torch_compile)")
    b.add_argument("--peak-tflops", type=float, default=None,
                   help="peak dense bf16 TFLOP/s for the MFU figure (default: looked up for H100/H200/A100/L40S)")
    b.add_argument("--sides", nargs="+", default=None,
                   help="which sides to run (default: ours, trainer, trainer_grouped, ours_ungrouped, ours_packed; "
                        "also ours_compiled, ours_packed_compiled)")
    b.add_argument("--max-tokens", type=int, default=None,
                   help="our micro-batches cut at this many tokens (TrainConfig.max_tokens_per_batch)")
    b.add_argument("--words", type=float, default=22.0,
                   help="median record length in words (22: about 50 tokens; 170 fills 384)")
    b.add_argument("--compile-limit", type=float, default=None,
                   help="seconds the torch.compile warm-up may take before the compiled sides are dropped")
    b.add_argument("--profile", action="store_true", help="add a torch.profiler summary of a few of our steps")
    b.add_argument("--out", default="outputs/bench/gpu", help="bench gpu: where the JSON files go")
    b.add_argument("--tiny", action="store_true", help="bench gpu: the same steps on a tiny model on CPU (a test)")
    b.add_argument("--budget", type=float, default=None, help="bench gpu: seconds for all steps (default 540)")
    b.set_defaults(func=_cmd_bench)

    y = sub.add_parser("synth-sanity", help="the synth world's sanity-check table (zero-shot transfer, controls)")
    y.add_argument("--encoder", default=None, help="synth encoder folder (e.g. a 00_pretrain run's encoder)")
    y.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15], help="fine-tuning seeds")
    y.add_argument("--budget", default="quick", help="smoke, quick (5k examples, 400 steps) or full (20k, 1500)")
    y.add_argument("--lr", type=float, default=None,
                   help="fine-tuning learning rate (default 1e-3, the docs' tables; the study grids train at 3e-4)")
    y.add_argument("--out", default=None, help="write every score to this CSV (with --merge: the merged table)")
    y.add_argument("--merge", nargs="+", default=None, metavar="CSV",
                   help="no training: print the tables over these --out CSVs (e.g. one process per seed)")
    y.set_defaults(func=_cmd_synth_sanity)

    n = sub.add_parser("synth-negation", help="NLI zero-shot with only a language's negation word made `not` "
                       "(or --form)")
    n.add_argument("--model", required=True, help="a fine-tuned NLI-like classifier (e.g. a target run's model/)")
    n.add_argument("--languages", nargs="+", default=["lx60", "lx0"], help="synth languages (default lx60 lx0)")
    n.add_argument("--max-examples", type=int, default=1000, help="test examples per language (default 1000)")
    n.add_argument("--form", default="not", help="the word(s) put in place of the negation word (default not)")
    n.add_argument("--breakdown", action="store_true",
                   help="accuracy and predicted labels per gold label and construction, as generated and with --form")
    n.set_defaults(func=_cmd_synth_negation)

    c = sub.add_parser("synth-checkpoint", help="regenerate a committed synth encoder from its recipe")
    c.add_argument("name", nargs="?", default=None, help="checkpoint name (synth-tiny, synth-small, synth-medium)")
    c.add_argument("--out", default=None, help="output folder (default: a new folder under outputs/checkpoints/)")
    c.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: deterministic, best when shared)")
    c.add_argument("--device", default="auto", help="auto, cpu or cuda")
    c.add_argument("--save-every", type=int, default=0, help="steps between snapshots (0: none)")
    c.add_argument("--sums", action="store_true", help="rewrite checkpoints/synth/SHA256SUMS and exit")
    c.set_defaults(func=_cmd_synth_checkpoint)

    lr = sub.add_parser("select-lr", help="learning rates chosen on English dev (studies/tuning/learning_rate.yaml)")
    lr.add_argument("--results", default=None, help="metrics.csv to read (default: outputs/results/metrics.csv)")
    lr.set_defaults(func=_cmd_select_lr)

    rt = sub.add_parser("real-targets", help="write docs/results/real_targets.md: e5 on the real targets beside "
                        "its floors (studies/checks/real_targets.yaml)")
    rt.add_argument("--results", default=None, help="metrics.csv to read (default: outputs/results/metrics.csv)")
    rt.add_argument("--out", default=None, help="the page to write (default: docs/results/real_targets.md)")
    rt.set_defaults(func=_cmd_real_targets)

    pg = sub.add_parser("pages", help="write docs/results/<study>.md from the imported result bundles (claims, "
                        "floors, answer), with the analysis notebooks' functions")
    pg.add_argument("--study", default=None, help="one study (default: every study with committed bundles)")
    pg.add_argument("--profile", default="embedded-full", help="the bundles' profile (default embedded-full)")
    pg.add_argument("--out", default=None, help="folder to write to (default: docs/results)")
    pg.set_defaults(func=_cmd_pages)

    tr = sub.add_parser("trace", help="where each decimal number of the README and docs comes from (a generated "
                        "page, a bundle, a committed record)")
    tr.add_argument("files", nargs="*", help="files to trace (default: README.md, docs/changes.md, "
                    "docs/results/README.md)")
    tr.add_argument("--check", action="store_true", help="exit 1 when a number has no source")
    tr.set_defaults(func=_cmd_trace)

    from xlt_utils.grid import add_commands  # grid, results, report, reproduce

    add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except XLTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
