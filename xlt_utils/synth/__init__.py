"""The synth world's generator: synthetic languages with controlled typology, tasks in every format, MLM.

Layers (each a module, pure Python and seeded unless noted):

- :mod:`~xlt_utils.synth.world`: entities, concepts, logical forms (LFs) and Zipfian samplers.
- :mod:`~xlt_utils.synth.languages`: :class:`LanguageSpec` (10 word-order switches, morphology, lexicon
  overlap, script), the default languages, lexicons, distances and language cards.
- :mod:`~xlt_utils.synth.grammar`: LF → tokens with gold POS, NER (IOB2) and alignment nodes.
- :mod:`~xlt_utils.synth.builders`: task items (labels by construction) → records in the task schemas.
- :mod:`~xlt_utils.synth.corpus`: non-parallel MLM corpora with an optional parallel fraction.
- :mod:`~xlt_utils.synth.pretrain`: MLM pretraining of XLM-R-architecture encoders (torch).
- :mod:`~xlt_utils.synth.probes`: cheap frozen-encoder transfer probes (retrieval, linear POS).

Tasks are registered by :mod:`xlt_utils.worlds.synth`; see docs/synth-world.md.
"""

from xlt_utils.synth.languages import DEFAULT_LANGUAGES, LANGUAGE_IDS, LanguageSpec, distances, language_card

__all__ = ["DEFAULT_LANGUAGES", "LANGUAGE_IDS", "LanguageSpec", "distances", "language_card"]
