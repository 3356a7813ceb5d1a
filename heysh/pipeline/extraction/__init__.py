"""Entity and relation extraction from chunks of text.

Two extractors share one small protocol (:class:`Extractor`, in :mod:`.base`): one result per
input chunk, in input order. The values they exchange (:class:`ChunkInput`,
:class:`ChunkExtraction` and its entities and relations, :data:`ENTITY_TYPES`) are imported from
:mod:`.base`; this package exports the extractors.

* :class:`HeuristicExtractor` (:mod:`.heuristic`) is offline and deterministic (the default).
  Regexes find runs of capitalised words, acronyms and initials in linear time; word knowledge
  from data libraries (:mod:`.lexicon`) and the rules for technical text (:mod:`.technical`)
  judge which are names, cues give their types, and entities sharing a sentence are related.
* :class:`LlmExtractor` (:mod:`.llm`) asks any OpenAI-compatible chat completions endpoint for
  structured output, parsed by the ``openai`` SDK into pydantic models, and asks again for a
  chunk whose reply is malformed.

Entity types are deliberately few (see :data:`ENTITY_TYPES`):

``PERSON``
    people, named by their name (titles and honorifics are not part of it);
``ORGANIZATION``
    companies, universities, institutes, agencies, governments, teams;
``LOCATION``
    countries, cities, regions, geographic features, addresses and facilities known as places;
``EVENT``
    wars, battles, revolutions, conferences, elections, games;
``CONCEPT``
    everything else that has a name: awards, theories, substances, works, products, software,
    languages, protocols and formats, and the fallback when nothing points to another type.
"""

from heysh.pipeline.extraction.base import Extractor
from heysh.pipeline.extraction.heuristic import RELATION_WINDOW, HeuristicExtractor
from heysh.pipeline.extraction.llm import (
    EXTRACTION_SCHEMA,
    ExtractionReply,
    LlmExtractor,
    parse_reply,
)

__all__ = [
    "EXTRACTION_SCHEMA",
    "RELATION_WINDOW",
    "ExtractionReply",
    "Extractor",
    "HeuristicExtractor",
    "LlmExtractor",
    "parse_reply",
]
