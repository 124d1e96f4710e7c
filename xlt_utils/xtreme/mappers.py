"""Hub schema -> record schema (:mod:`xlt_utils.formats.schema`), one mapper per Hub table shape.

A mapper takes a :class:`Context` (task, split, language and the source part being read) and returns the
records of that part. All I/O goes through :meth:`Context.read` / :meth:`Context.rows`, which call
:func:`xlt_utils.xtreme.source.read_table`; so the mapping is the same code for the Hub and for local copies.
Mapper names and their arguments are data in each task's ``source`` (see :mod:`xlt_utils.xtreme.catalog`).
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xlt_utils.errors import XLTError
from xlt_utils.tasks import Task
from xlt_utils.xtreme.source import read_table

log = logging.getLogger(__name__)
Record = dict[str, Any]


@dataclass
class Context:
    """What a mapper needs: the task, our split and language, and the source part (plain dict) to read."""

    task: Task
    split: str
    lang: str
    part: Mapping[str, Any]

    @property
    def args(self) -> Mapping[str, Any]:
        return self.part.get("args", {})

    @property
    def where(self) -> str:
        return f"{self.task.name}/{self.split}/{self.lang}"

    def configs(self) -> list[str | None]:
        """The part's config(s) for this language: ``config`` (a pattern with ``{lang}``) or ``configs``
        (``{lang: name | [names]}`` or ``{lang: {split: [names]}}``)."""
        if "configs" in self.part:
            value = self.part["configs"][self.lang]
            if isinstance(value, Mapping):
                value = value[self.split]
            return list(value) if isinstance(value, (list, tuple)) else [value]
        config = self.part.get("config")
        return [config.format(lang=self.lang) if isinstance(config, str) else config]

    def hub_splits(self) -> list[str]:
        value = self.part["splits"][self.split]
        return list(value) if isinstance(value, (list, tuple)) else [value]

    def read(
        self,
        config: str | None = None,
        hub_split: str | None = None,
        *,
        hub_id: str | None = None,
        revision: str | None = None,
        layout: str | None = None,
        features: list[str] | None = None,
    ) -> Any:
        """Read one table; defaults are the part's own dataset, revision, layout and declared columns."""
        same = hub_id is None
        ds = read_table(
            hub_id or self.part["hub_id"],
            config,
            hub_split or self.hub_splits()[0],
            revision=revision if revision is not None else (self.part.get("revision") if same else None),
            layout=layout or (self.part.get("layout", "hub") if same else "hub"),
        )
        want = features if features is not None else (self.part.get("features") if same else None)
        if want:
            missing = [c for c in want if c not in ds.column_names]
            if missing:
                raise XLTError(
                    f"{self.where}: {hub_id or self.part['hub_id']} {config!r} lacks columns {missing} "
                    f"(has {ds.column_names}); the Hub schema changed or the local copy is not in the Hub layout"
                )
        return ds

    def rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(key, row)`` over every config x Hub split of this part; ``key`` is unique within the part."""
        for config in self.configs():
            for hub_split in self.hub_splits():
                ds = self.read(config, hub_split)
                check_class_labels(ds, self.args, self.where)
                for i, row in enumerate(ds):
                    yield f"{config or 'default'}/{hub_split}/{i}", row


def check_class_labels(ds: Any, args: Mapping[str, Any], where: str) -> None:
    """If the table carries ClassLabel names for the label column, they must equal the catalog's names."""
    col, names = args.get("label") or args.get("tags"), args.get("names")
    if not col or not names or col not in getattr(ds, "features", {}):
        return
    feature = ds.features[col]
    inner = getattr(feature, "feature", feature)
    served = getattr(inner, "names", None)
    if served is not None and list(served) != list(names):
        raise XLTError(f"{where}: column {col!r} has class names {served}; the catalog expects {list(names)}")


def _label(value: Any, names: list[str] | None, mapping: Mapping[str, str] | None) -> str | None:
    """Map a Hub label (ClassLabel int or string) to a label name; ``None`` = unlabelled row."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            return None
        if names is None:
            return str(value)
        return names[value]
    text = str(value).strip()
    if not text or text == "-":
        return None
    return (mapping or {}).get(text, text)


def _matches(row: Mapping[str, Any], keep: Mapping[str, str] | None, lang: str) -> bool:
    return not keep or all(str(row.get(k)) == v.format(lang=lang) for k, v in keep.items())


# ---------------------------------------------------------------------------------------------------------
# classification / pair classification


def pair(ctx: Context) -> list[Record]:
    """Sentence pairs: args ``a``, ``b``, ``label``, optional ``names`` (ClassLabel order), ``map``, ``keep``."""
    a, b, lab = ctx.args["a"], ctx.args["b"], ctx.args["label"]
    out = []
    for key, row in ctx.rows():
        if not _matches(row, ctx.args.get("keep"), ctx.lang):
            continue
        label = _label(row[lab], ctx.args.get("names"), ctx.args.get("map"))
        if label is None or row[a] is None or row[b] is None:
            continue
        out.append({"id": key, "text_a": str(row[a]), "text_b": str(row[b]), "label": label})
    return out


def single(ctx: Context) -> list[Record]:
    """Single sentences: args ``text``, ``label``, optional ``names``."""
    text, lab = ctx.args["text"], ctx.args["label"]
    out = []
    for key, row in ctx.rows():
        label = _label(row[lab], ctx.args.get("names"), ctx.args.get("map"))
        if label is None:
            continue
        out.append({"id": key, "text": str(row[text]), "label": label})
    return out


# ---------------------------------------------------------------------------------------------------------
# tagging


def tagging(ctx: Context) -> list[Record]:
    """Token sequences: args ``tokens``, ``tags``, ``names`` (ClassLabel order), optional ``drop`` (tag names
    whose tokens are removed, e.g. UD multiword-token lines ``_``)."""
    tok_col, tag_col, names = ctx.args["tokens"], ctx.args["tags"], ctx.args.get("names")
    drop = set(ctx.args.get("drop", ()))
    out = []
    for key, row in ctx.rows():
        tags = [names[t] if isinstance(t, int) and names else str(t) for t in row[tag_col]]
        pairs = [(str(tok), tag) for tok, tag in zip(row[tok_col], tags) if tag not in drop]
        pairs = [(tok, tag) for tok, tag in pairs if tok.strip()]
        if not pairs:
            continue
        out.append({"id": key, "tokens": [p[0] for p in pairs], "tags": [p[1] for p in pairs]})
    return out


# ---------------------------------------------------------------------------------------------------------
# span QA


def repair_answers(context: str, texts: list[str], starts: list[int]) -> tuple[list[str], list[int]]:
    """Keep answers whose ``answer_start`` indexes their text; re-anchor the others at the nearest occurrence
    of the text in the context; drop answers that do not occur at all."""
    good_texts, good_starts = [], []
    for text, start in zip(texts, starts):
        if not text:
            continue
        if context[start : start + len(text)] == text:
            good_texts.append(text)
            good_starts.append(int(start))
            continue
        hits = [m.start() for m in re.finditer(re.escape(text), context)]
        if hits:
            good_texts.append(text)
            good_starts.append(min(hits, key=lambda h: abs(h - start)))
    return good_texts, good_starts


def squad(ctx: Context) -> list[Record]:
    """SQuAD schema. Args: ``id_prefix`` (``{lang: prefix}``, TyDiQA's one-config-for-all-languages),
    ``exclude_articles_of`` (a table whose question ids mark SQuAD articles to leave out: XQuAD's sources),
    ``unanswerable`` (keep questions without answers: SQuAD v2.0)."""
    prefixes = ctx.args.get("id_prefix")
    prefix = None
    if prefixes and ctx.lang in prefixes:
        prefix = prefixes[ctx.lang] + "-"
    rows = list(ctx.rows())
    excluded_titles: set[str] = set()
    if ctx.args.get("exclude_articles_of"):
        ex = ctx.args["exclude_articles_of"]
        ids = set(ctx.read(ex["config"], ex["split"], hub_id=ex["hub_id"], revision=ex.get("revision"))["id"])
        excluded_titles = {row["title"] for _, row in rows if row["id"] in ids}
    keep_unanswerable = bool(ctx.args.get("unanswerable"))
    out, dropped = [], 0
    for _key, row in rows:
        if prefix and not str(row["id"]).startswith(prefix):
            continue
        if excluded_titles and row.get("title") in excluded_titles:
            continue
        answers = row["answers"] or {}
        texts = [str(t) for t in answers.get("text", [])]
        starts = [int(s) for s in answers.get("answer_start", [])]
        fixed_texts, fixed_starts = repair_answers(row["context"], texts, starts)
        if texts and not fixed_texts:
            dropped += 1
            continue
        if not fixed_texts and not keep_unanswerable:
            dropped += 1
            continue
        out.append(
            {
                "id": str(row["id"]),
                "context": row["context"],
                "question": row["question"],
                "answers": {"text": fixed_texts, "answer_start": fixed_starts},
            }
        )
    if dropped:
        log.warning(
            "%s: dropped %d questions whose answers do not occur in their context", ctx.where, dropped
        )
    return out


# ---------------------------------------------------------------------------------------------------------
# multiple choice


def _mc(key: str, context: str, question: str, choices: list[Any], label: int | None) -> Record | None:
    if label is None or label < 0 or label >= len(choices):
        return None
    return {
        "id": key,
        "context": context or "",
        "question": question or "",
        "choices": [str(c) for c in choices],
        "label": int(label),
    }


def mc_columns(ctx: Context) -> list[Record]:
    """One column per choice. Args: ``context``, ``question`` (column names or ``None``), ``choices``
    (column names), ``label`` (column), ``offset`` (subtract from the label: SIQA's 1-based ``"1"``..``"3"``),
    ``id`` (optional id column)."""
    a = ctx.args
    out = []
    for key, row in ctx.rows():
        raw = row[a["label"]]
        if raw is None or str(raw).strip() in ("", "-1"):
            continue
        label = int(str(raw).strip()) - int(a.get("offset", 0))
        rec = _mc(
            str(row[a["id"]]) if a.get("id") else key,
            row[a["context"]] if a.get("context") else "",
            row[a["question"]] if a.get("question") else "",
            [row[c] for c in a["choices"]],
            label,
        )
        if rec:
            out.append(rec)
    return out


def mc_commonsenseqa(ctx: Context) -> list[Record]:
    """CommonsenseQA: ``choices = {label: [A..E], text: [...]}``, ``answerKey`` a letter (empty on test)."""
    out = []
    for _key, row in ctx.rows():
        letters, texts = list(row["choices"]["label"]), list(row["choices"]["text"])
        answer = (row.get("answerKey") or "").strip()
        if answer not in letters:
            continue
        rec = _mc(str(row["id"]), "", row["question"], texts, letters.index(answer))
        if rec:
            out.append(rec)
    return out


def mc_hellaswag(ctx: Context) -> list[Record]:
    """HellaSwag: context ``ctx_a``, question ``ctx_b`` (the start of the sentence each ending completes),
    choices ``endings``, label a string ``"0"``..``"3"`` (empty on test)."""
    out = []
    for key, row in ctx.rows():
        raw = str(row["label"]).strip() if row["label"] is not None else ""
        if not raw:
            continue
        rec = _mc(f"{key}:{row['ind']}", row["ctx_a"], row["ctx_b"], list(row["endings"]), int(raw))
        if rec:
            out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------------------
# retrieval


def _query(rid: str, text: str, gold: list[str]) -> Record:
    return {"id": rid, "text": text, "side": "query", "gold": list(gold)}


def _candidate(rid: str, text: str) -> Record:
    return {"id": rid, "text": text, "side": "candidate", "gold": []}


def bitext(ctx: Context) -> list[Record]:
    """Aligned bitext in one table (Tatoeba): row i pairs ``query`` (English) with ``candidate`` (the other
    language). English sentences are the queries, the other language is the index (jiant and xtreme)."""
    q_col, c_col = ctx.args["query"], ctx.args["candidate"]
    out: list[Record] = []
    cands: list[Record] = []
    for i, (_key, row) in enumerate(ctx.rows()):
        cid = f"{ctx.lang}-{i}"
        out.append(_query(f"en-{i}", str(row[q_col]).strip(), [cid]))
        cands.append(_candidate(cid, str(row[c_col]).strip()))
    return out + cands


def bucc(ctx: Context) -> list[Record]:
    """BUCC 2018 as served by google/xtreme: one row per gold pair; ``source_lang``/``target_lang`` hold the
    sentence ids (``de-000123`` / ``en-000456``). Queries = the non-English side, candidates = English."""
    gold: dict[str, list[str]] = defaultdict(list)
    src_text: dict[str, str] = {}
    tgt_text: dict[str, str] = {}
    for _key, row in ctx.rows():
        sid, tid = str(row["source_lang"]), str(row["target_lang"])
        src_text[sid] = str(row["source_sentence"]).strip()
        tgt_text[tid] = str(row["target_sentence"]).strip()
        if tid not in gold[sid]:
            gold[sid].append(tid)
    return [_query(sid, text, gold[sid]) for sid, text in src_text.items()] + [
        _candidate(tid, text) for tid, text in tgt_text.items()
    ]


def flores(ctx: Context) -> list[Record]:
    """FLORES-200: one config per language, rows aligned by ``id``; English queries, target-language index."""
    en_code, code = ctx.args["english"], ctx.args["codes"][ctx.lang]
    out: list[Record] = []
    cands: list[Record] = []
    target = {int(r["id"]): str(r["sentence"]).strip() for r in ctx.read(code)}
    for row in ctx.read(en_code):
        sid = int(row["id"])
        if sid not in target:
            continue
        out.append(_query(f"en-{sid}", str(row["sentence"]).strip(), [f"{ctx.lang}-{sid}"]))
        cands.append(_candidate(f"{ctx.lang}-{sid}", target[sid]))
    return out + cands


_SENTENCE_END = re.compile(r"(?<=[.!?।॥؟])\s+|(?<=[。！？])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Heuristic sentence spans (start, end) of a paragraph: breaks after ``. ! ? । ؟`` + whitespace and after
    ``。！？``. An approximation of LAReQA's ``sentence_breaks`` (which the Hub copy of XQuAD-R lacks)."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start()
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans or [(0, len(text))]


def lareqa(ctx: Context) -> list[Record]:
    """LAReQA on XQuAD-R: queries = questions in ``lang``; candidates = the sentences of every paragraph in all
    languages of the task (a language-agnostic pool); gold = the answer sentence of the same question in each
    language. Questions are matched across languages by id (the 11 files are parallel)."""
    langs = ctx.args.get("pool", ctx.task.languages)
    pool: list[Record] = []
    answer_sentence: dict[str, dict[str, str]] = defaultdict(dict)  # qid -> lang -> candidate id
    questions: list[tuple[str, str]] = []
    for lg in langs:
        ds = ctx.read(ctx.part["config"].format(lang=lg))
        context_index: dict[str, int] = {}
        for row in ds:
            context = row["context"]
            if context not in context_index:
                context_index[context] = len(context_index)
                c = context_index[context]
                for s, (a, b) in enumerate(sentence_spans(context)):
                    pool.append(_candidate(f"{lg}-{c}-{s}", context[a:b].strip()))
            c = context_index[context]
            spans = sentence_spans(context)
            starts = [a for a, _ in spans]
            answers = row["answers"] or {}
            for text, start in zip(
                *repair_answers(
                    context, list(answers.get("text", [])), [int(x) for x in answers.get("answer_start", [])]
                )
            ):
                s = max(0, bisect.bisect_right(starts, start) - 1)
                answer_sentence[str(row["id"])][lg] = f"{lg}-{c}-{s}"
                break
            if lg == ctx.lang:
                questions.append((str(row["id"]), row["question"]))
    queries = [
        _query(f"{ctx.lang}-q-{qid}", q, sorted(answer_sentence[qid].values())) for qid, q in questions
    ]
    return queries + pool


def _mark_mention(text: str, start: int, end: int) -> str:
    """Mewsli-X query text: the context with the mention wrapped in ``{ }`` (existing braces -> parentheses)."""
    text = text.replace("{", "(").replace("}", ")")
    return f"{text[:start]}{{{text[start:end]}}}{text[end:]}"


def mewslix(ctx: Context) -> list[Record]:
    """Mewsli-X: queries = mentions in context (``{context, mention}`` rows, the ContextualMention schema of
    xtreme's utils_mewslix), gold = the mention's entity id; candidates = the English Wikipedia entity
    descriptions of ``candidate_entities`` (shared by every language)."""
    out: list[Record] = []
    for _key, row in ctx.rows():
        context, mention = row["context"], row["mention"]
        span = mention["mention_span"]
        out.append(
            _query(
                str(mention["example_id"]),
                _mark_mention(context["text"], int(span["start"]), int(span["end"])),
                [str(mention["entity_id"])],
            )
        )
    cand = ctx.args["candidates"]
    for row in ctx.read(cand["config"], cand["split"], features=cand.get("features")):
        text = (row.get("description") or row.get("title") or "").strip()
        out.append(_candidate(str(row["entity_id"]), text))
    return out


MAPPERS: dict[str, Callable[[Context], list[Record]]] = {
    "pair": pair,
    "single": single,
    "tagging": tagging,
    "squad": squad,
    "mc_columns": mc_columns,
    "mc_commonsenseqa": mc_commonsenseqa,
    "mc_hellaswag": mc_hellaswag,
    "bitext": bitext,
    "bucc": bucc,
    "flores": flores,
    "lareqa": lareqa,
    "mewslix": mewslix,
}
