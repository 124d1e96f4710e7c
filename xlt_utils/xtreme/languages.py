"""Language inventories of XTREME / XTREME-R and the per-dataset names of each language's config.

Languages are ISO 639-1 codes throughout the project; the tables below translate them to what each Hub
dataset calls its configs (``udpos.English``, ``tatoeba.afr``, ``deu_Latn``...). Sources: the XTREME and
XTREME-R papers, the ``google/xtreme`` dataset card (config list), the ``universal_dependencies`` v2.7 loader
(treebank splits), ``facebook/flores`` (FLORES-200 codes) and ``mteb/tatoeba-bitext-mining`` (config names).
"""

from __future__ import annotations

# fmt: off

# The 40 XTREME languages (Hu et al. 2020) and the 10 that XTREME-R adds (Ruder et al. 2021).
XTREME_LANGUAGES = (
    "af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id", "it",
    "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th", "tl", "tr",
    "ur", "vi", "yo", "zh",
)
XTREME_R_ADDED = ("az", "gu", "ht", "lt", "pa", "pl", "qu", "ro", "uk", "wo")
XTREME_R_LANGUAGES = tuple(sorted(XTREME_LANGUAGES + XTREME_R_ADDED))

XNLI = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX = ("de", "en", "es", "fr", "ja", "ko", "zh")
XQUAD = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
XQUAD_R_ADDED = ("ro",)  # XTREME-R adds Romanian (google/xquad ``xquad.ro``)
MLQA = ("ar", "de", "en", "es", "hi", "vi", "zh")
BUCC = ("de", "fr", "ru", "zh")
XCOPA = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
LAREQA = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MEWSLIX = ("ar", "de", "en", "es", "fa", "ja", "pl", "ro", "ta", "tr", "uk")

# TyDiQA-GoldP: one Hub config for all languages; the language is the prefix of the example id.
TYDIQA_ID_PREFIX = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian", "ko": "korean",
    "ru": "russian", "sw": "swahili", "te": "telugu",
}
TYDIQA = tuple(TYDIQA_ID_PREFIX)

# PAN-X / WikiANN: google/xtreme serves the 40 XTREME languages; XTREME-R's 8 additions come from
# unimelb-nlp/wikiann (the same Rahimi et al. 2019 splits and label set).
PANX_XTREME = XTREME_LANGUAGES
PANX_R_ADDED = ("az", "gu", "lt", "pa", "pl", "qu", "ro", "uk")

# UD-POS: google/xtreme config names (UD v2.5, all treebanks of a language concatenated).
UDPOS_CONFIG = {
    "af": "udpos.Afrikaans", "ar": "udpos.Arabic", "bg": "udpos.Bulgarian", "de": "udpos.German",
    "el": "udpos.Greek", "en": "udpos.English", "es": "udpos.Spanish", "et": "udpos.Estonian",
    "eu": "udpos.Basque", "fa": "udpos.Persian", "fi": "udpos.Finnish", "fr": "udpos.French",
    "he": "udpos.Hebrew", "hi": "udpos.Hindi", "hu": "udpos.Hungarian", "id": "udpos.Indonesian",
    "it": "udpos.Italian", "ja": "udpos.Japanese", "kk": "udpos.Kazakh", "ko": "udpos.Korean",
    "mr": "udpos.Marathi", "nl": "udpos.Dutch", "pt": "udpos.Portuguese", "ru": "udpos.Russian",
    "ta": "udpos.Tamil", "te": "udpos.Telugu", "th": "udpos.Thai", "tl": "udpos.Tagalog", "tr": "udpos.Turkish",
    "ur": "udpos.Urdu", "vi": "udpos.Vietnamese", "yo": "udpos.Yoruba", "zh": "udpos.Chinese",
}
UDPOS_XTREME = tuple(sorted(UDPOS_CONFIG))
UDPOS_TEST_ONLY = ("th", "tl", "yo")  # no train/dev in UD v2.5 (the Hub config has only a test split)
UDPOS_NO_DEV = ("kk",)  # Kazakh: train + test, no dev
# XTREME-R's added UD-POS languages (UD v2.7): every treebank of the language, per split, as served by
# universal_dependencies. lt_hse is left out: its loader serves the train file as dev and test too.
UD27_TREEBANKS = {
    "lt": {"train": ["lt_alksnis"], "dev": ["lt_alksnis"], "test": ["lt_alksnis"]},
    "pl": {"train": ["pl_lfg", "pl_pdb"], "dev": ["pl_lfg", "pl_pdb"], "test": ["pl_lfg", "pl_pdb", "pl_pud"]},
    "ro": {
        "train": ["ro_nonstandard", "ro_rrt", "ro_simonero"],
        "dev": ["ro_nonstandard", "ro_rrt", "ro_simonero"],
        "test": ["ro_nonstandard", "ro_rrt", "ro_simonero"],
    },
    "uk": {"train": ["uk_iu"], "dev": ["uk_iu"], "test": ["uk_iu"]},
    "wo": {"train": ["wo_wtb"], "dev": ["wo_wtb"], "test": ["wo_wtb"]},
}

# Tatoeba: google/xtreme ``tatoeba.{iso3}`` for XTREME's 36; mteb/tatoeba-bitext-mining ``{iso3}-eng`` for
# XTREME-R's 5 additions (the same LASER Tatoeba v1 test sets).
TATOEBA_XTREME = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa", "et": "est",
    "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
    "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
}
TATOEBA_R_ADDED = {"az": "aze", "lt": "lit", "pl": "pol", "ro": "ron", "uk": "ukr"}

# FLORES-200 codes (facebook/flores config names) of the XTREME-R languages.
FLORES_CODE = {
    "af": "afr_Latn", "ar": "arb_Arab", "az": "azj_Latn", "bg": "bul_Cyrl", "bn": "ben_Beng", "de": "deu_Latn",
    "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn", "eu": "eus_Latn", "fa": "pes_Arab",
    "fi": "fin_Latn", "fr": "fra_Latn", "gu": "guj_Gujr", "he": "heb_Hebr", "hi": "hin_Deva", "ht": "hat_Latn",
    "hu": "hun_Latn", "id": "ind_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "jv": "jav_Latn", "ka": "kat_Geor",
    "kk": "kaz_Cyrl", "ko": "kor_Hang", "lt": "lit_Latn", "ml": "mal_Mlym", "mr": "mar_Deva", "ms": "zsm_Latn",
    "my": "mya_Mymr", "nl": "nld_Latn", "pa": "pan_Guru", "pl": "pol_Latn", "pt": "por_Latn", "qu": "quy_Latn",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu", "th": "tha_Thai",
    "tl": "tgl_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab", "vi": "vie_Latn", "wo": "wol_Latn",
    "yo": "yor_Latn", "zh": "zho_Hans",
}
FLORES = tuple(sorted(k for k in FLORES_CODE if k != "en"))

# Wikipedia (wikimedia/wikipedia) dump used for continued multilingual MLM.
WIKIPEDIA_DUMP = "20231101"
# fmt: on
