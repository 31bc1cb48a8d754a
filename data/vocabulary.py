"""Words and strings the generators render: common English words plus non-semantic strings, all built in.

OCRBench mixes semantic text (real words) and non-semantic text (random letters); the generators do the same, so a
model cannot answer from a language prior alone. Target strings that must read differently after a rotation or a
mirror (`ASYMMETRIC_CHARS`) avoid the characters that look the same, or like another character, when turned.
"""

from __future__ import annotations

import numpy as np

WORDS: tuple[str, ...] = tuple("""
apple river garden window market silver rocket planet bridge candle forest harbor island jacket kettle ladder
lemon meadow needle orange pencil quiet rabbit saddle tablet umbrella valley wagon yellow zipper anchor basket
castle dragon engine falcon guitar hammer igloo jungle kitten lantern magnet napkin oyster parrot quilt ribbon
salmon tunnel violin walnut yogurt border camera doctor energy finger global honest insect journey kingdom lizard
mirror number office people record signal ticket unique velvet winter breeze copper dinner empire fabric gravel
helmet injury jigsaw keeper ledger mantle noodle option pepper quarry rescue shadow timber update vessel wizard
bakery cactus donkey eclipse feather glacier harvest iceberg jasmine koala lobster mango nectar orbit pirate quartz
raven spider thunder unicorn volcano whistle yacht zebra archive beacon canyon delta ember fjord geyser horizon
indigo jetty karma lagoon monsoon nebula oasis prairie quiver summit tundra uplift vortex willow
station library theater museum airport factory hospital kitchen village college stadium shelter terminal cabinet
""".split())

# Characters that stay distinguishable under every rotation and mirror (no O/0/8/X/H/I/N/S/Z/M/W/6/9/b/d/p/q/u/n ...).
ASYMMETRIC_CHARS = "ACEFGJKLPQRTY2345"
GLYPH_CHARS = "ACEFGJKLPRTY2345"  # single characters for glyph targets (Q excluded: reads as O when tiny)


def random_word(rng: np.random.Generator) -> str:
    return WORDS[int(rng.integers(len(WORDS)))]


def random_string(rng: np.random.Generator, length: int, alphabet: str = "ABCDEFGHJKLMNPRSTUVWXYZ23456789") -> str:
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=length))


def asymmetric_string(rng: np.random.Generator, length: int) -> str:
    """A string that reads differently when rotated or mirrored (no symmetric characters, not a palindrome)."""
    while True:
        s = random_string(rng, length, ASYMMETRIC_CHARS)
        if s != s[::-1]:
            return s


def styled(rng: np.random.Generator, word: str) -> str:
    """The word in lower, upper or title case."""
    k = int(rng.integers(3))
    return word.lower() if k == 0 else word.upper() if k == 1 else word.capitalize()


def similar_words(rng: np.random.Generator, word: str, k: int) -> list[str]:
    """`k` distractors for `word` that share letters with it (same first letter, length or many letters in common),
    so that an option cannot be picked from a blurry glimpse of the word's shape or first letter."""
    w = word.lower()

    def score(other: str) -> float:
        common = sum(min(w.count(c), other.count(c)) for c in set(other))
        return common / max(len(w), len(other)) + 0.5 * (other[0] == w[0]) + 0.3 * (len(other) == len(w))

    pool = sorted((x for x in WORDS if x != w), key=score, reverse=True)[: max(3 * k, 12)]
    picked = [str(x) for x in rng.choice(pool, size=k, replace=False)]
    return picked


# How characters look after a flip or a half turn (only those that read as a character again). Upper case and digits,
# plus the few lower-case letters that are their own or each other's image in common fonts.
_MIRROR_H = {c: c for c in "AHIMOTUVWXYilmnouvwx08"} | {"b": "d", "d": "b", "p": "q", "q": "p"}
_MIRROR_V = {c: c for c in "BCDEHIKOXcox038"} | {"b": "p", "p": "b", "d": "q", "q": "d"}
_TURN_180 = {c: c for c in "HINOSXZlosxz018"} | {"M": "W", "W": "M", "6": "9", "9": "6", "u": "n", "n": "u",
                                                  "b": "q", "q": "b", "d": "p", "p": "d"}


def readable_without_fix(text: str, transform: str) -> bool:
    """Whether `text`, after `transform` (the op applied to the image), still reads as `text` (e.g. "OTTO" mirrored
    left-right, "BOX" flipped top-bottom, "SOS" turned half-way): such an item does not test the transform."""
    chars = [c for c in text if not c.isspace()]
    if transform == "flip_h":
        return all(c in _MIRROR_H for c in chars) and "".join(_MIRROR_H[c] for c in reversed(chars)) == "".join(chars)
    if transform == "flip_v":
        return all(c in _MIRROR_V for c in chars) and "".join(_MIRROR_V[c] for c in chars) == "".join(chars)
    if transform == "rotate180":
        return all(c in _TURN_180 for c in chars) and "".join(_TURN_180[c] for c in reversed(chars)) == "".join(chars)
    return False  # quarter turns leave text sideways
