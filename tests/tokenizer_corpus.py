"""Deterministic multilingual / adversarial text corpus for tokenizer parity tests.

``corpus_lines(n, seed)`` returns ``n`` strings (the "lines" may themselves contain newlines and
other separators). The first lines are fixed probes that make sure every class below occurs at
least once (every Unicode space character, every C0/C1 control, ...); the rest are random mixes
of fragments drawn with ``random.Random(seed)``:

English sentences, mixed case, numbers, URLs and e-mail addresses; accented Latin (precomposed
and with combining marks), Greek (with final sigma) and Cyrillic; CJK ideographs from the URO,
extensions A-E and both compatibility blocks, CJK punctuation, full-/half-width forms; Hangul
syllables and jamo; kana with precomposed and combining voiced marks; Devanagari; Arabic with
harakat; emoji with skin tones, ZWJ sequences, flags, keycaps and variation selectors; C0, DEL
and C1 controls; zero-width and format characters; every whitespace character; ASCII and
Unicode punctuation runs; very long words (100-300 characters, ASCII and multi-byte);
compatibility characters that NFKC would change (ligatures, superscripts, roman numerals,
circled digits); private-use, unassigned and noncharacter code points; U+FFFD and NUL; empty and
whitespace-only lines.
"""

from __future__ import annotations

import random

__all__ = ["corpus_lines", "SPACE_CHARS", "CONTROL_CHARS", "ZERO_WIDTH_CHARS"]

# Every Zs character, the ASCII whitespace controls and the other characters some definition
# of "whitespace" includes (NEL, line/paragraph separator, Mongolian vowel separator).
SPACE_CHARS = (
    " \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"
    + "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\u0085\u2028\u2029\u180e"
)
CONTROL_CHARS = (
    "".join(chr(c) for c in range(0x01, 0x20)) + "\x7f" + "".join(chr(c) for c in range(0x80, 0xA0))
)
ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202e\u2066\u2069"

_WORDS = (
    "the of and to in is was for on that with as by at from this be are it an or have not "
    "which their has but were its they been more one all also other new first two after into "
    "time can than would who only may most these over some such about world between during "
    "under people because research university government international although system "
    "language model tokenization transformer bidirectional encoder representations pretraining "
    "unbelievable antidisestablishmentarianism supercalifragilistic hyperparameter reproducible "
    "don't isn't we're it's o'clock rock'n'roll state-of-the-art e-mail co-operate naïve café "
    "résumé coöperate façade jalapeño doppelgänger smörgåsbord"
).split()
_NAMES = ["iPhone", "McDonald", "eBay", "GitHub", "TensorFlow", "BERT", "NASA", "O'Neil", "MacBook",
          "YouTube", "PhD", "DiCaprio", "LaTeX", "JavaScript", "macOS", "HELLO", "WORLD", "Über",
          "ÉCOLE", "ĲSSEL", "İstanbul", "DŽEMAL", "ǅemal", "Ǉubljana"]
_ACCENTED = ("àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿāăąćĉċčďđēĕėęěĝğġģĥħĩīĭįıĳĵķĸĺļľŀłńņňŉŋōŏőœŕŗř"
             "śŝşšţťŧũūŭůűųŵŷźżžſƀƒơưǎǐǒǔǖǘǚǜǻǽǿșțȷɐɑɒəɛɡɪʃʊʒḁḃḉẞßẛạảấầẩẫậắằẳẵặẹẻẽếềểễệ"
             "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞŸĀĂĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮİĲĴĶĹĻĽĿŁŃŅŇŊŌŎŐŒŔŖŘŚŜŞŠ"
             "ŢŤŦŨŪŬŮŰŲŴŶŹŻŽƁƆƏƐƓƔƗƜƝƟƠƯƱƲǍǏǑǓǕǗǙǛǺǼǾȘȚẠẢẤẦẨẪẬẮẰẲẴẶẸẺẼẾỀỂỄỆ")
_COMBINING = [chr(c) for c in (0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x30A, 0x30B,
                               0x30C, 0x323, 0x327, 0x328, 0x331, 0x345, 0x20D7, 0x1AB0, 0x1DC0,
                               0x488, 0x20DD)]
_GREEK = ["ΟΔΟΣ", "ΟΔΟΣ.", "Σ", "ΣΑΣ", "ΑΣ'Σ", "ΑΣ.Β", "λόγος", "ΛΌΓΟΣ", "Ὀδυσσεύς", "ΣΊΣΥΦΟΣ",
          "ἀλήθεια", "καλημέρα", "ΚΑΛΗΜΈΡΑ", "Α\u0301Σ", "ΑΣ\u200dΣ", "ΜΑΣ-ΣΑΣ", "ΑΣ\u00adΒ", "ΑΣ1",
          "ΑΣΣ", "1Σ", "ΑʹΣ", "ΑΣʹ", "ς", "σ", "ΐ", "ϐϑϒϕϖϰϱϲϴϵ", "Ω", "\u2126"]
_CYRILLIC = ["Москва", "МОСКВА", "привет", "ПРИВЕТ", "Ёлка", "ёж", "Україна", "Ї", "ђ", "Ѓ", "Ӂ",
             "й", "и\u0306", "Србија"]
_CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
_CJK_EXTRA = ("、。〃〈〉《》「」『』【】〔〕〖〗〘〙〜〝〞・ー｡｢｣､･"  # CJK punctuation
              "！＂＃＄％＆＇（）＊＋，－．／：；＜＝＞？＠［＼］＾＿｀｛｜｝～"  # full-width ASCII
              "ＡＢＣａｂｃ０１２３ｶﾞｷﾞｸﾟﾊﾟｱｲｳ"  # full-width letters, half-width katakana
              "⼀⼁⼂⺀⺁〇〡〢々〻㐀㒳㍱㍻㋿㊤㊥㊦㈱㈲")  # Kangxi/radicals, ideographic misc.
_HANGUL_JAMO = "ᄀᄁ나ᅢᅣᆨᆩᆪㄱㄲㄳㅏㅐㅑ"
_KANA = ("あいうえおかきくけこがぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽゃゅょっゎゐゑを"
         "アイウエオカキクケコガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポャュョッヮヴヵヶー")
_VOICED = ["\u3099", "\u309a", "\u309b", "\u309c"]
_DEVANAGARI = ["हिन्दी", "नमस्ते", "भारत", "संस्कृतम्", "क्षत्रिय", "ज़िंदगी", "ॐ", "।", "॥",
               "०१२३",
               "क़", "क\u093c"]
_ARABIC = ["العربية", "مَرْحَبًا", "كِتَابٌ", "السلام عليكم", "؟", "،", "؛", "٪", "٣٤٥", "ﻻ", "ﷲ",
           "\u0640\u0640", "ـ", "ة", "ﺏ"]
_EMOJI = ["😀", "😂", "👍", "👍🏽", "👩🏿\u200d💻", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇺🇸",
          "🇯🇵", "1️⃣", "#️⃣", "❤️", "❤", "☺︎", "🤷\u200d♀️", "🧑🏻\u200d🤝\u200d🧑🏿", "✌🏼", "🫨",
          "🫠", "🥲", "🪿", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"]
_PUNCT_ASCII = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_PUNCT_UNICODE = ("¡¿«»‹›‘’‚‛“”„‟†‡•‣․‥…‧‰‱′″‴‵‶‷‸※‼‽⁂⁃⁅⁆⁇⁈⁉⁊⁋⁌⁍⁎⁏⁐⁑⁓⁕⁖⁗⁘⁙⁚⁛⁜⁝⁞"
                  "‐‑‒–—―‖‗§¶·׳״־؟،٭۔܀࠰।॥෴๏๚๛༄༅།༎፠፡፣፤፥፦፧፨᠀᠁᠂᠃᠄᠅᠆᠇᠈᠉᠊⸀⸁⸂⸃⸗⸚⸜⸝⸺⸻"
                  "〜〰〽゠・﹐﹑﹒﹔﹕﹖﹗﹘﹙﹚﹝﹞﹟﹠﹡﹣﹨﹪﹫︐︑︒︓︔︕︖︗︘︙"
                  "©®°±²³µ¹¼½¾×÷¢£¤¥€₹₽₿™℃℉№∀∂∃∅∇∈∑√∞∧∨∩∪∫≈≠≡≤≥⊂⊃⊕⊗←↑→↓↔⇒⇔■□▲△▶►◆◇○●★☆♠♣♥♦♪♫")
_COMPAT = ["ﬁ", "ﬂ", "ﬀ", "ﬃ", "ﬅ", "ﬆ", "²", "³", "¹", "⁴", "₂", "ⁿ", "Ⅻ", "ⅻ", "Ⅳ", "①", "⑳", "⑴",
           "⒜", "㍻", "㎏", "㎞", "™", "℡", "\u212b", "\u212a", "\u2126", "ℌ", "ℍ", "ℓ", "℮", "ǆ",
           "Ǆ", "ǅ", "ʰ", "ᵃ", "ˢ",
           "µ", "ſ", "ﬄ", "⁰", "½", "⅓", "¼", "‥", "…", "ﷺ", "ﷻ", "㋀", "㏠", "𝐀", "𝐚", "𝔄", "𝟘",
           "𝟙", "Ꭰ", "ꭰ", "Ᏸ", "ᏸ", "Ა", "ა", "ᲀ", "ẞ", "ß", "ǰ", "ΐ", "ﬓ", "ŉ", "İ", "ı", "ͅ",
           "\U0001d165\U0001d16d", "\U0001d15f", "\u0915\u094d\u200d", "\u302e\u302f"]
_ODD = ["\ue000", "\uf8ff", "\U000f0000", "\U0010fffd", "\U000e0001", "\ufffe", "\uffff",
        "\U0001fffe", "\u0378", "\U0003ffff", "\U000dffff", "\u2065", "\U00031350", "\U0002ebf0",
        "\ufffd", "\x00", "\ufdd0", "\U0001f8b0", "\u0890", "\u1b4c"]
_TLDS = ["com", "org", "de", "co.uk", "io", "中国", "рф"]


def _rand_cjk(rng: random.Random) -> str:
    lo, hi = rng.choice(_CJK_RANGES)
    return chr(rng.randint(lo, hi))


def _english(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 14))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), rng.choice(_NAMES))
    words[0] = words[0].capitalize()
    out = []
    for w in words:
        r = rng.random()
        if r < 0.05:
            w = w.upper()
        elif r < 0.1:
            w = w.title()
        out.append(w)
        if rng.random() < 0.1:
            out[-1] += rng.choice([",", ";", ":", " -", " —", "'s", ")", "!"])
    return " ".join(out) + rng.choice([".", "!", "?", "...", "", "!?", '."'])


def _mixed_case(rng: random.Random) -> str:
    return " ".join(
        "".join(c.upper() if rng.random() < 0.5 else c for c in rng.choice(_WORDS + _NAMES))
        for _ in range(rng.randint(1, 5)))


def _accented(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(1, 6)):
        w = []
        for _ in range(rng.randint(1, 10)):
            r = rng.random()
            if r < 0.4:
                w.append(rng.choice(_ACCENTED))
            elif r < 0.6:
                w.append(rng.choice("aeiouAEIOUnNcCsSzZ") + rng.choice(_COMBINING))
            elif r < 0.65:
                w.append(rng.choice("aeiou") + rng.choice(_COMBINING) + rng.choice(_COMBINING))
            else:
                w.append(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        words.append("".join(w))
    return " ".join(words)


def _greek_cyrillic(rng: random.Random) -> str:
    return " ".join(rng.choice(_GREEK + _CYRILLIC) + rng.choice(["", "", "", ".", ",", "Σ", "σ"])
                    for _ in range(rng.randint(1, 5)))


def _cjk(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 20)):
        r = rng.random()
        if r < 0.6:
            out.append(chr(rng.randint(0x4E00, 0x9FFF)))
        elif r < 0.8:
            out.append(_rand_cjk(rng))
        elif r < 0.9:
            out.append(rng.choice(_CJK_EXTRA))
        else:
            out.append(rng.choice(["BERT", "AI", "2024年", "3.5", "ok", " "]))
    return "".join(out)


def _hangul(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(1, 5)):
        w = "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.2:
            w += rng.choice(_HANGUL_JAMO)
        words.append(w)
    return " ".join(words) + rng.choice(["", ".", "?", "요.", "!"])


def _kana(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(2, 15)):
        out.append(rng.choice(_KANA))
        if rng.random() < 0.15:
            out.append(rng.choice(_VOICED))
    if rng.random() < 0.5:
        out.append(chr(rng.randint(0x4E00, 0x9FFF)))
    return "".join(out) + rng.choice(["", "。", "、", "！"])


def _indic_arabic(rng: random.Random) -> str:
    return " ".join(rng.choice(_DEVANAGARI + _ARABIC) for _ in range(rng.randint(1, 6)))


def _emoji(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 6)):
        out.append(rng.choice(_EMOJI))
        if rng.random() < 0.4:
            out.append(rng.choice([" ", "", "ok", "lol ", rng.choice(_WORDS)]))
    return "".join(out)


def _controls(rng: random.Random) -> str:
    """Words with control, format and zero-width characters inside and between them."""
    out = []
    for _ in range(rng.randint(1, 6)):
        w = rng.choice(_WORDS + _NAMES)
        i = rng.randint(0, len(w))
        odd = rng.choice([rng.choice(CONTROL_CHARS), rng.choice(ZERO_WIDTH_CHARS),
                          rng.choice(_ODD), "\u180e", "\x00", "\ufffd"])
        out.append(w[:i] + odd + w[i:])
    return " ".join(out)


def _spaces(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 6)):
        out.append(rng.choice(_WORDS + _NAMES + ["中文", "한국어", "é"]))
        out.append("".join(rng.choice(SPACE_CHARS) for _ in range(rng.randint(1, 3))))
    return "".join(out)


def _punct_runs(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 5)):
        run = "".join(rng.choice(_PUNCT_ASCII + _PUNCT_UNICODE) for _ in range(rng.randint(1, 8)))
        out.append(run)
        out.append(rng.choice(["", " ", rng.choice(_WORDS), rng.choice(_WORDS) + " "]))
    return "".join(out)


def _long_word(rng: random.Random) -> str:
    n = rng.choice([rng.randint(100, 300), rng.randint(195, 205), 200, 201, 199])
    kind = rng.randrange(8)
    if kind == 0:
        w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
    elif kind == 1:
        w = ("ab" * n)[:n]
    elif kind == 2:
        w = "".join(rng.choice("éüñçàøß") for _ in range(n))
    elif kind == 3:
        w = "".join(rng.choice("абвгдежзийклмнопрстуфхцчшщ") for _ in range(n))
    elif kind == 4:
        w = "".join(rng.choice(_KANA) for _ in range(n))
    elif kind == 5:
        w = "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(n))
    elif kind == 6:
        w = "".join(rng.choice(["😀", "a", "ü", "😂"]) for _ in range(n))
    else:  # combining marks: length in characters differs before/after accent stripping
        w = "".join(rng.choice("aeiou") + "\u0301" for _ in range(n // 2))
    if rng.random() < 0.3:
        w = w.upper()
    return rng.choice(["", "the ", "x "]) + w + rng.choice(["", " end", ".", "-x"])


def _numbers(rng: random.Random) -> str:
    forms = [str(rng.randint(0, 10**rng.randint(1, 12))), f"{rng.random() * 1000:.3f}",
             f"{rng.randint(1, 999)},{rng.randint(100, 999)},{rng.randint(100, 999)}",
             f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/{rng.randint(1900, 2100)}",
             f"{rng.randint(1, 99)}%", f"${rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
             f"{rng.randint(1, 99)}th", "½", "3½", "10²", "٣٤٥", "१२३", "五十", "Ⅻ", "1e-5", "+49",
             ".".join(str(rng.randint(0, 255)) for _ in range(4))]
    return " ".join(rng.choice(forms) for _ in range(rng.randint(1, 6)))


def _urls(rng: random.Random) -> str:
    host = ".".join(rng.choice(_WORDS).replace("'", "") for _ in range(rng.randint(1, 3)))
    tld = rng.choice(_TLDS)
    forms = [f"https://www.{host}.{tld}/path/to/page?q={rng.choice(_WORDS)}&x=1#frag",
             f"http://{host}.{tld}:8080/a_b-c/~user/index.html",
             f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}@{host}.{tld}",
             f"ftp://{host}.{tld}/файл.txt", f"www.{host}.{tld}", f"#{rng.choice(_NAMES)}",
             f"@{rng.choice(_NAMES)}_{rng.randint(1, 99)}", "C:\\Users\\Me\\file.txt",
             f"{rng.choice(_NAMES)}::{rng.choice(_WORDS)}()"]
    return rng.choice(["", "see ", "Visit: "]) + rng.choice(forms) + rng.choice(["", ".", " now"])


def _compat(rng: random.Random) -> str:
    return " ".join(
        rng.choice(["", "x", "A", "日"]) + rng.choice(_COMPAT) + rng.choice(["", "y", "Σ"])
        for _ in range(rng.randint(1, 6)))


def _blank(rng: random.Random) -> str:
    return "".join(rng.choice(SPACE_CHARS + ZERO_WIDTH_CHARS + "\x00\ufffd\x7f\x85")
                   for _ in range(rng.randint(0, 6))) if rng.random() < 0.8 else ""


_GENERATORS = [
    (_english, 14), (_mixed_case, 4), (_accented, 8), (_greek_cyrillic, 5), (_cjk, 8),
    (_hangul, 4), (_kana, 4), (_indic_arabic, 5), (_emoji, 5), (_controls, 7), (_spaces, 6),
    (_punct_runs, 6), (_long_word, 4), (_numbers, 4), (_urls, 4), (_compat, 5), (_blank, 3),
]


def _probes() -> list[str]:
    """Fixed lines that make sure every listed character occurs."""
    lines = ["", " ", "\t\n\r", "\x00", "\ufffd", "a\x00b", "a\ufffdb", "a\x7fb", "a\x85b"]
    lines += [f"a{ch}b A{ch}B" for ch in SPACE_CHARS]
    lines += [f"x{ch}y X{ch}Y" for ch in CONTROL_CHARS]
    lines += [f"zero{ch}width {ch}lead trail{ch}" for ch in ZERO_WIDTH_CHARS]
    lines.append(" ".join(_PUNCT_ASCII) + " " + _PUNCT_ASCII)
    lines.append(_PUNCT_UNICODE)
    lines += ["".join(chr(lo + k) for k in range(8)) + "".join(chr(hi - k) for k in range(8))
              for lo, hi in _CJK_RANGES]
    lines += [" ".join(_COMPAT), " ".join(_GREEK), " ".join(_CYRILLIC), " ".join(_EMOJI),
              " ".join(_ODD), " ".join(_DEVANAGARI), " ".join(_ARABIC), _CJK_EXTRA, _KANA,
              "".join(k + _VOICED[0] for k in _KANA[:20]), _ACCENTED]
    lines += ["a" * n for n in (99, 100, 101, 199, 200, 201, 300)]
    lines += ["é" * n for n in (99, 100, 101, 199, 200, 201, 300)]
    lines += ["e\u0301" * n for n in (99, 100, 101, 150)]
    lines += ["😀" * n for n in (49, 50, 51, 199, 200, 201)]
    return lines


def corpus_lines(n: int = 6000, seed: int = 0) -> list[str]:
    """Returns ``n`` deterministic test strings (fixed probes first, then random mixes)."""
    rng = random.Random(seed)
    lines = _probes()[:n]
    gens = [g for g, _ in _GENERATORS]
    weights = [w for _, w in _GENERATORS]
    while len(lines) < n:
        parts = [rng.choices(gens, weights)[0](rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        sep = rng.choice([" ", " ", " ", "", "\n", "\t", "\u3000"])
        lines.append(sep.join(parts))
    return lines
