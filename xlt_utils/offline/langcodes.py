"""Language codes: normalise gettext locales and ISO 639-2/3 codes to ISO 639 (639-1 where one exists).

gettext catalogs name languages by POSIX locale (``pt_BR``, ``sr@latin``, ``zh_Hans``), the UDHR by ISO 639-3
individual-language codes (``arb``, ``cmn``, ``swh``), lang2vec by ISO 639-3. Every language in the offline-real
world is named by its ISO 639-1 code where one exists, else its ISO 639-3 code; a region or script variant
maps to its base language and, where several variants of one language exist, one is kept (see
:func:`variant_rank`).
"""

from __future__ import annotations

# ISO 639-1 -> ISO 639-3 (macrolanguage code where the 639-1 code names a macrolanguage), as in lang2vec.
ISO639_1_TO_3 = {
    "aa": "aar", "ab": "abk", "ae": "ave", "af": "afr", "ak": "aka", "am": "amh", "an": "arg", "ar": "ara",
    "as": "asm", "av": "ava", "ay": "aym", "az": "aze", "ba": "bak", "be": "bel", "bg": "bul", "bi": "bis",
    "bm": "bam", "bn": "ben", "bo": "bod", "br": "bre", "bs": "bos", "ca": "cat", "ce": "che", "ch": "cha",
    "co": "cos", "cr": "cre", "cs": "ces", "cu": "chu", "cv": "chv", "cy": "cym", "da": "dan", "de": "deu",
    "dv": "div", "dz": "dzo", "ee": "ewe", "el": "ell", "en": "eng", "eo": "epo", "es": "spa", "et": "est",
    "eu": "eus", "fa": "fas", "ff": "ful", "fi": "fin", "fj": "fij", "fo": "fao", "fr": "fra", "fy": "fry",
    "ga": "gle", "gd": "gla", "gl": "glg", "gn": "grn", "gu": "guj", "gv": "glv", "ha": "hau", "he": "heb",
    "hi": "hin", "ho": "hmo", "hr": "hrv", "ht": "hat", "hu": "hun", "hy": "hye", "hz": "her", "ia": "ina",
    "id": "ind", "ie": "ile", "ig": "ibo", "ii": "iii", "ik": "ipk", "io": "ido", "is": "isl", "it": "ita",
    "iu": "iku", "ja": "jpn", "jv": "jav", "ka": "kat", "kg": "kon", "ki": "kik", "kj": "kua", "kk": "kaz",
    "kl": "kal", "km": "khm", "kn": "kan", "ko": "kor", "kr": "kau", "ks": "kas", "ku": "kur", "kv": "kom",
    "kw": "cor", "ky": "kir", "la": "lat", "lb": "ltz", "lg": "lug", "li": "lim", "ln": "lin", "lo": "lao",
    "lt": "lit", "lu": "lub", "lv": "lav", "mg": "mlg", "mh": "mah", "mi": "mri", "mk": "mkd", "ml": "mal",
    "mn": "mon", "mr": "mar", "ms": "msa", "mt": "mlt", "my": "mya", "na": "nau", "nb": "nob", "nd": "nde",
    "ne": "nep", "ng": "ndo", "nl": "nld", "nn": "nno", "no": "nor", "nr": "nbl", "nv": "nav", "ny": "nya",
    "oc": "oci", "oj": "oji", "om": "orm", "or": "ori", "os": "oss", "pa": "pan", "pi": "pli", "pl": "pol",
    "ps": "pus", "pt": "por", "qu": "que", "rm": "roh", "rn": "run", "ro": "ron", "ru": "rus", "rw": "kin",
    "sa": "san", "sc": "srd", "sd": "snd", "se": "sme", "sg": "sag", "sh": "hbs", "si": "sin", "sk": "slk",
    "sl": "slv", "sm": "smo", "sn": "sna", "so": "som", "sq": "sqi", "sr": "srp", "ss": "ssw", "st": "sot",
    "su": "sun", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel", "tg": "tgk", "th": "tha", "ti": "tir",
    "tk": "tuk", "tl": "tgl", "tn": "tsn", "to": "ton", "tr": "tur", "ts": "tso", "tt": "tat", "tw": "twi",
    "ty": "tah", "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzb", "ve": "ven", "vi": "vie", "vo": "vol",
    "wa": "wln", "wo": "wol", "xh": "xho", "yi": "yid", "yo": "yor", "za": "zha", "zh": "zho", "zu": "zul",
}
# ISO 639-2/B bibliographic codes that differ from 639-3.
ISO639_2B_TO_3 = {
    "alb": "sqi", "arm": "hye", "baq": "eus", "tib": "bod", "bur": "mya", "cze": "ces", "chi": "zho", "wel": "cym",
    "ger": "deu", "dut": "nld", "gre": "ell", "per": "fas", "fre": "fra", "geo": "kat", "ice": "isl", "mac": "mkd",
    "mao": "mri", "may": "msa", "rum": "ron", "slo": "slk",
}
# The standard individual language of a macrolanguage that has a 639-1 code (the UDHR uses these).
INDIVIDUAL_TO_MACRO = {
    "arb": "ara", "cmn": "zho", "swh": "swa", "pes": "fas", "zsm": "msa", "ekk": "est", "lvs": "lav",
    "nob": "nob", "uzn": "uzb", "khk": "mon", "azj": "aze", "als": "sqi", "ydd": "yid", "plt": "mlg",
    "gug": "grn", "npi": "nep", "ory": "ori", "pbu": "pus", "quz": "que", "kmr": "kur", "lav": "lav",
    "gaz": "orm", "prs": "fas", "hbs": "hbs", "uzs": "uzb", "fuf": "ful", "knc": "kau", "kng": "kon",
    "kpv": "kom", "ojb": "oji", "crk": "cre", "ike": "iku", "swc": "swa", "tgl": "tgl",
}
ISO639_3_TO_1 = {v: k for k, v in ISO639_1_TO_3.items()}
# lang2vec (URIEL) has no rows for some macrolanguage codes: try these individual languages instead, in order.
URIEL_FALLBACKS = {
    "ara": ["arb"], "zho": ["cmn"], "fas": ["pes"], "msa": ["zsm", "ind"], "swa": ["swh"], "est": ["ekk"],
    "lav": ["lvs"], "uzb": ["uzn"], "mon": ["khk"], "aze": ["azj"], "sqi": ["als"], "yid": ["ydd"],
    "mlg": ["plt"], "grn": ["gug"], "nep": ["npi"], "ori": ["ory"], "pus": ["pbu"], "que": ["quz"],
    "kur": ["kmr"], "orm": ["gaz"], "nor": ["nob"], "hbs": ["hrv"], "kom": ["kpv"], "oji": ["ojb"],
    "iku": ["ike"], "cre": ["crk"], "ful": ["fuf"], "kau": ["knc"], "kon": ["kng"],
}
# Variants kept when a language has several catalogs (lower rank wins; the bare code ranks 0).
_PREFERRED_VARIANTS = {"zh_CN": 0, "zh_Hans": 0, "zh": 1, "sr": 0, "pt": 0, "pt_PT": 1, "nb": 0, "no": 1,
                       "nb_NO": 1, "ca": 0, "de": 0, "de_DE": 1, "fr": 0, "fr_FR": 1, "es": 0, "es_ES": 1}


def to_iso(code: str) -> str | None:
    """Normalise a locale or language code to ISO 639-1 where one exists, else ISO 639-3.

    Args:
        code: ``de``, ``pt_BR``, ``sr@latin``, ``zh-Hans``, ``deu``, ``arb``...

    Returns:
        The normalised code, or ``None`` when it is not a language (``C``, ``POSIX``, ``en@quot``-like
        pseudo-locales are handled by the caller) or not recognisable.
    """
    base = code.replace("-", "_").split("@")[0].split("_")[0].split(".")[0].lower()
    if not base.isalpha() or len(base) not in (2, 3):
        return None
    if len(base) == 2:
        if base == "no":  # Norwegian: Bokmål is the written standard the catalogs use.
            return "nb"
        return base if base in ISO639_1_TO_3 else None
    base = ISO639_2B_TO_3.get(base, base)
    base = INDIVIDUAL_TO_MACRO.get(base, base)
    if base == "nor":  # Norwegian: Bokmål is the written standard the catalogs use.
        return "nb"
    return ISO639_3_TO_1.get(base, base)


def to_iso639_3(code: str) -> str:
    """The ISO 639-3 (or macrolanguage) code of a normalised code (``de`` -> ``deu``; ``ast`` stays)."""
    return ISO639_1_TO_3.get(code, code)


def variant_rank(code: str) -> tuple[int, str]:
    """Sort key choosing which catalog represents a language: bare code, then preferred variants, then the rest.

    Variants with ``@`` (scripts such as ``sr@latin``, or ``ca@valencia``) and charset variants
    (``de.us-ascii``) rank last, so the catalog of the language's main script and full orthography is used.
    """
    if code in _PREFERRED_VARIANTS:
        return (_PREFERRED_VARIANTS[code], code)
    if not any(c in code for c in "_@-."):
        return (0, code)
    return (3 if ("@" in code or "." in code) else 2, code)
