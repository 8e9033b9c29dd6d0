"""The fictional knowledge base behind the sample set: entities, their facts, and texts about them.

Everything is invented (names are built from syllables) so that no encoder has memorised the facts,
and each entity has near-duplicate siblings (Velmora / Velmoran / Belmora) of the same kind with
similar facts, so that matching surface strings is not enough to find the right passage.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from prime_model.data.sample_vocab import (
    CODAS,
    COMPANY_SUFFIXES,
    FIRST_NAMES,
    KINDS,
    LOOKALIKE,
    MODELS,
    ONSETS,
    PRONOUNS,
    SCHEMA,
    TITLE_ADJECTIVES,
    TITLE_NOUNS,
    VOWELS,
    Choice,
    Kind,
    Number,
    NumberStyle,
    ValueSpec,
    texts_for,
)


@dataclass(frozen=True)
class Fact:
    """One attribute value: its text, its number (for near-duplicate siblings), its entity."""

    text: str
    number: float | None = None
    ref: str | None = None


@dataclass
class Entity:
    """A fictional entity; ``facts`` and ``passages`` are keyed by attribute name."""

    id: str
    kind: Kind
    name: str
    family: int
    pronoun: str = "it"
    desc: str = ""
    facts: dict[str, Fact] = field(default_factory=dict)
    passages: dict[str, str] = field(default_factory=dict)

    def render(self, template: str, attribute: str | None = None) -> str:
        """Fill a template's {name} {value} {subj} ... slots, capitalised variants included."""
        value = self.facts[attribute].text if attribute else ""
        slots = {"name": self.name, "value": value, "desc": self.desc} | PRONOUNS[self.pronoun]
        slots |= {key.capitalize(): text[:1].upper() + text[1:] for key, text in slots.items()}
        return template.format(**slots)


@dataclass
class KnowledgeBase:
    """All entities, by id, by kind and by family of near-duplicates."""

    entities: dict[str, Entity]
    by_kind: dict[Kind, list[str]]

    def siblings(self, entity_id: str) -> list[str]:
        """The near-duplicate distractors of an entity (same kind and family)."""
        entity = self.entities[entity_id]
        return [
            other
            for other in self.by_kind[entity.kind]
            if other != entity_id and self.entities[other].family == entity.family
        ]

    def corpus(self) -> list[tuple[str, str]]:
        """(target_id, passage) for every (entity, attribute), in a stable order."""
        return [
            (target_id(entity.id, attribute), passage)
            for entity in self.entities.values()
            for attribute, passage in entity.passages.items()
        ]


def target_id(entity_id: str, attribute: str) -> str:
    """The passage id, e.g. ``city:velmora:population``."""
    return f"{entity_id}:{attribute}"


def build_knowledge_base(
    seed: int, entities_per_kind: int, distractors_per_entity: int
) -> KnowledgeBase:
    """Names first (so facts can reference any entity), then facts, links and passages."""
    rng = random.Random(f"prime-sample-kb:{seed}")  # noqa: S311 - reproducible data, not crypto
    used: set[str] = set()
    entities: dict[str, Entity] = {}
    for kind in KINDS:
        for entity in _make_kind(rng, kind, entities_per_kind, distractors_per_entity, used):
            entities[entity.id] = entity
    by_kind: dict[Kind, list[str]] = {kind: [] for kind in KINDS}
    for entity in entities.values():
        by_kind[entity.kind].append(entity.id)
    kb = KnowledgeBase(entities, by_kind)
    heads: dict[tuple[Kind, int], Entity] = {}
    for entity in entities.values():
        head = heads.setdefault((entity.kind, entity.family), entity)
        entity.facts = {
            attr: _draw(rng, spec, kb, head.facts[attr] if head is not entity else None)
            for attr, spec in SCHEMA[entity.kind].items()
        }
    _link(rng, kb)
    for entity in entities.values():
        entity.desc = _describe(entity)
        entity.passages = {
            attr: entity.render(rng.choice(texts_for(entity.kind, attr).passages), attr)
            for attr in SCHEMA[entity.kind]
        }
    return kb


def _make_kind(
    rng: random.Random, kind: Kind, count: int, distractors: int, used: set[str]
) -> list[Entity]:
    """Families of one base name plus near-duplicate variants, ``count`` entities in all."""
    out: list[Entity] = []
    family = 0
    while len(out) < count:
        names = _family_names(rng, kind, distractors + 1, used)
        for name, pronoun in names[: count - len(out)]:
            out.append(Entity(f"{kind}:{_slug(name)}", kind, name, family, pronoun))
        family += 1
    return out


def _family_names(
    rng: random.Random, kind: Kind, size: int, used: set[str]
) -> list[tuple[str, str]]:
    """A fresh base name and ``size - 1`` look-alikes, all unused; reserves their stems."""
    while True:
        stem = _stem(rng)
        stems = [stem, *_stem_variants(rng, stem)]
        names = _names_from_stems(rng, kind, stems, size)
        keys = {_slug(n) for n, _ in names} | {s.lower() for s in stems}
        if len(names) == size and not keys & used:
            used.update(keys)
            return names


def _names_from_stems(
    rng: random.Random, kind: Kind, stems: list[str], size: int
) -> list[tuple[str, str]]:
    """Kind-specific look-alike names: shared stems, swapped suffixes, models or first names."""
    stem = stems[0]
    if kind == "company":
        suffixes = rng.sample(COMPANY_SUFFIXES, 3)
        pool = [f"{stem} {suffixes[0]}", f"{stem} {suffixes[1]}"]
        pool += [f"{s} {suffixes[i % 2]}" for i, s in enumerate(stems[1:])] + [
            f"{stem} {suffixes[2]}"
        ]
        named = [(n, "it") for n in pool]
    elif kind == "product":
        models = rng.sample(MODELS, 3)
        pool = [f"{stem} {models[0]}", f"{stem} {models[1]}"]
        pool += [f"{s} {models[0]}" for s in stems[1:]] + [f"{stem} {models[2]}"]
        named = [(n, "it") for n in pool]
    elif kind == "person":
        pronoun = rng.choice(("she", "he"))
        firsts = rng.sample(FIRST_NAMES[pronoun], 3)
        pool = [f"{firsts[0]} {stem}", f"{firsts[1]} {stem}"]
        pool += [f"{firsts[0]} {s}" for s in stems[1:]] + [f"{firsts[2]} {stem}"]
        named = [(n, pronoun) for n in pool]
    elif kind == "book":
        adjectives = rng.sample(TITLE_ADJECTIVES, 3)
        nouns = rng.sample(TITLE_NOUNS, 2)
        pool = [f"The {adjectives[0]} {nouns[0]}", f"The {adjectives[1]} {nouns[0]}"]
        pool += [f"The {adjectives[0]} {_plural(nouns[0])}", f"The {adjectives[0]} {nouns[1]}"]
        pool += [f"The {adjectives[2]} {nouns[0]}"]
        named = [(n, "it") for n in pool]
    else:
        prefix = "the " if kind == "river" else ""
        named = [(prefix + s, "it") for s in stems]
    return named[:size] if len(set(named)) == len(named) else []


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2] not in "aeiou" else noun + "s"


def _stem(rng: random.Random) -> str:
    """A pronounceable invented word of 2-3 syllables, e.g. Velmora."""
    while True:
        parts = [rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.choice((2, 3)))]
        word = "".join(parts) + rng.choice(CODAS)
        if 4 <= len(word) <= 9:
            return word.capitalize()


def _stem_variants(rng: random.Random, stem: str) -> list[str]:
    """Look-alikes of a stem: an added ending, a swapped first letter, a changed last vowel."""
    lower = stem.lower()
    ending = rng.choice("nsr") if lower[-1] in "aeiou" else rng.choice(("a", "o", "en"))
    if lower[1] in "aeiou":
        swapped = LOOKALIKE.get(lower[0], "h" + lower[0]) + lower[1:]
    else:  # a cluster: drop its first letter (Brimo -> Rimo)
        swapped = lower[1:]
    last = max(i for i, ch in enumerate(lower) if ch in "aeiou")
    vowel = rng.choice([v for v in "aeiou" if v != lower[last]])
    changed = lower[:last] + vowel + lower[last + 1 :]
    variants = [lower + ending, swapped, changed]
    rng.shuffle(variants)
    return [v.capitalize() for v in variants if v != lower]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower().removeprefix("the ")).strip("_")


def _draw(rng: random.Random, spec: ValueSpec, kb: KnowledgeBase, base: Fact | None) -> Fact:
    """A random value; given the family's first entity's fact, a similar one (hard negatives)."""
    if isinstance(spec, Number):
        if base is not None and base.number is not None:
            jitter = (
                rng.uniform(-12, 12)
                if spec.style == "year"
                else base.number * rng.uniform(-0.15, 0.15)
            )
            number = min(max(base.number + jitter, spec.low), spec.high)
        elif spec.style == "year":
            number = rng.uniform(spec.low, spec.high)
        else:  # sizes spread over orders of magnitude
            number = math.exp(rng.uniform(math.log(spec.low), math.log(spec.high)))
        return _format_number(number, spec.style)
    if isinstance(spec, Choice):
        if base is not None and rng.random() < 0.6:
            return base
        return Fact(rng.choice(spec.options))
    if base is not None and rng.random() < 0.5:
        return base
    ref = rng.choice(kb.by_kind[spec.kind])
    return Fact(kb.entities[ref].name, ref=ref)


def _format_number(number: float, style: NumberStyle) -> Fact:
    if style == "year":
        return Fact(str(round(number)), float(round(number)))
    if style == "kg":
        return Fact(f"{number:.1f} kg", round(number, 1))
    if style == "price":
        value = max(round(number / 10) * 10 - 1, 9)
        return Fact(f"${value:,}", float(value))
    digits = 3 if style == "count" else 2 if style == "km" else 4
    value = max(int(round(number, digits - 1 - math.floor(math.log10(number)))), 1)
    text = f"{value:,} km" if style == "km" else f"{value:,}"
    return Fact(text, float(value))


def _link(rng: random.Random, kb: KnowledgeBase) -> None:
    """Make paired facts agree: a company's product is made by it, its CEO works for it."""
    companies = kb.by_kind["company"]
    products = rng.sample(kb.by_kind["product"], len(kb.by_kind["product"]))
    people = rng.sample(kb.by_kind["person"], len(kb.by_kind["person"]))
    for company, product, person in zip(companies, products, people, strict=False):
        _set_ref(kb, company, "product", product)
        _set_ref(kb, product, "maker", company)
        _set_ref(kb, company, "ceo", person)
        _set_ref(kb, person, "employer", company)
    rivers = kb.by_kind["river"]
    for city, river in zip(rng.sample(kb.by_kind["city"], len(rivers)), rivers, strict=False):
        _set_ref(kb, city, "river", river)  # every river flows through at least one city
    for river in rivers:
        on_it = [c for c in kb.by_kind["city"] if kb.entities[c].facts["river"].ref == river]
        if on_it:
            largest = max(on_it, key=lambda c: kb.entities[c].facts["population"].number or 0.0)
            _set_ref(kb, river, "largest_city", largest)


def _set_ref(kb: KnowledgeBase, entity_id: str, attribute: str, ref: str) -> None:
    kb.entities[entity_id].facts[attribute] = Fact(kb.entities[ref].name, ref=ref)


def _describe(entity: Entity) -> str:
    """A short apposition used by passages ("Velmora, a city in Ostrand, ...")."""
    facts = entity.facts
    if entity.kind == "city":
        return f"a city in {facts['country'].text}"
    if entity.kind == "river":
        return f"a river in {facts['country'].text}"
    if entity.kind == "person":
        return facts["occupation"].text
    if entity.kind == "book":
        genre = facts["genre"].text
        return f"{'an' if genre[0] in 'aeiou' else 'a'} {genre} novel"
    if entity.kind == "company":
        return f"a company based in {facts['headquarters'].text}"
    return f"a product of {facts['maker'].text}"
