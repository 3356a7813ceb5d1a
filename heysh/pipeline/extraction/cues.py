"""What a name itself says about its type: places, head words, titles, given names, shapes."""

from __future__ import annotations

import functools

from heysh.pipeline.extraction.lexicon import lexicon

# Connectors that may join two capitalised parts of one name ("University of Paris"): the
# words the scanner's candidate regex lets through between capitalised words.
CONNECTORS = frozenset(
    ("of", "for", "de", "da", "di", "du", "des", "del", "della", "la", "le", "van", "von", "der")
)
CONNECTORS |= {"den", "ter", "y", "the", "&"}
TYPE_PRIORITY = {"ORGANIZATION": 4, "LOCATION": 3, "EVENT": 2, "PERSON": 1, "CONCEPT": 0}
# Rarer than this (Zipf), a word is no everyday English word: "Dijkstra", not "Semantic" (3.4).
_NAME_LIKE_ZIPF = 3.0


@functools.lru_cache(maxsize=65536)
def intrinsic_cues(tokens: tuple[str, ...], acronym: bool) -> tuple[tuple[str, int], ...]:
    """Type cues from the name itself (lower-case tokens), strongest first."""
    lex = lexicon()
    phrase = " ".join(tokens)
    if phrase in lex.places:
        return (("LOCATION", 4),)
    if phrase in lex.cities:
        return (("LOCATION", 3),)  # a city's name may be a person's: "Mary Somerville"
    if len(tokens) == 1 and tokens[0] in lex.technical_terms:
        return (("CONCEPT", 4),)  # "Python", "JSON": never a place or a company
    if acronym and len(tokens) == 1:
        return (("ORGANIZATION", 2),)  # NASA, IBM
    # An organisation's word ends its name: "Port of Rotterdam Authority".
    if len(tokens) >= 2 and lex.heads.get(tokens[-1]) == "ORGANIZATION":
        return (("ORGANIZATION", 4),)
    # The head is the part before a connector: "University" in "University of Paris".
    head_len = next((i for i, t in enumerate(tokens) if i > 0 and t in CONNECTORS), len(tokens))
    for score, part in ((4, tokens[:head_len]), (3, tokens[head_len:])):
        for token in reversed(part):
            keyword_type = lex.heads.get(token)
            if keyword_type is not None:
                return ((keyword_type, score),)
    cues: list[tuple[str, int]] = []
    first = tokens[0]
    if len(tokens) >= 2:
        if first in lex.cue_words["location_leads"]:
            cues.append(("LOCATION", 3))  # "San Francisco", "Fort Worth"
        elif first in lex.cue_words["weak_location_leads"]:
            cues.append(("LOCATION", 1))
    if first in lex.given_names:
        cues.append(("PERSON", 2))
    if phrase in lex.weak_places:
        cues.append(("LOCATION", 1))
    return tuple(cues)


def organisation_head(tokens: tuple[str, ...]) -> bool:
    return ("ORGANIZATION", 4) in intrinsic_cues(tokens, False)


def has_keyword_type(tokens: tuple[str, ...]) -> bool:
    """Whether the name has a head word or is a known place (so no person's name)."""
    return any(score >= 3 and type_ != "PERSON" for type_, score in intrinsic_cues(tokens, False))


def person_shape(tokens: tuple[str, ...], singles: set[tuple[str, ...]]) -> bool:
    """Whether an otherwise untyped name is shaped like a person's name.

    Capitalised words around name particles ("Ursula von der Leyen"); two or three plain words
    whose last word the chunk also uses alone ("Muff Potter" ... "Potter"); or two or three
    words that are no English words at all ("Femke Dijkstra", "Amara Nwosu").
    """
    lex = lexicon()
    if any(t in lex.demonyms for t in tokens) or any(len(t) == 1 for t in tokens[1:]):
        return False  # initials only first: "J. Presper Eckert", not "Plan B"
    inner = tokens[1:-1]
    if any(t in lex.particles for t in inner) and all(
        t in lex.particles or t not in CONNECTORS for t in inner
    ):
        return True
    if not 2 <= len(tokens) <= 3 or any(t in CONNECTORS for t in tokens):
        return False
    zipf = lex.zipf
    if (tokens[-1],) in singles and not lex.common(tokens[0]):
        return True  # not "Assignment Expressions" ... "Expressions"
    return all(zipf.get(t, 0.0) < _NAME_LIKE_ZIPF for t in tokens) and not any(
        t in lex.technical_terms for t in tokens
    )


def best_type(cues: dict[str, int]) -> tuple[str, int]:
    if not cues:
        return "CONCEPT", 0
    type_ = max(cues, key=lambda t: (cues[t], TYPE_PRIORITY[t]))
    return type_, cues[type_]
