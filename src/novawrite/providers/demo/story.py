"""The novel as the demo sees it: its phrase bank, its seeded dice, its cast and the values its templates take.

Everything is seeded by a hash of the novel's title, genre, synopsis and
language, so the same novel always gets the same plan, and the names it invents
are the ones its outline already talks about (the outline's hero is the first
character it creates).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import re
from collections.abc import Iterator, Mapping, Sequence

from novawrite.providers.demo import en, zh
from novawrite.providers.demo.phrases import GenreBank, Phrases
from novawrite.providers.requests import NovelRequest

#: The people an outline talks about: the author's characters first, then the demo's next ones.
CAST_SIZE = 8


def phrase_bank(language: str, genre: str) -> tuple[Phrases, GenreBank]:
    """The language's phrases and the first genre bank whose words the genre contains, else the everyday one."""
    module = en if language == "en" else zh
    genre_key = genre.casefold()
    for bank in module.BANKS:
        if any(word in genre_key for word in bank.match):
            return module.PHRASES, bank
    return module.PHRASES, module.BANKS[-1]


def name_key(name: str) -> str:
    """How names compare, as the generators compare them: trimmed, whitespace collapsed, case-folded."""
    return " ".join(name.split()).casefold()


class Story:
    def __init__(self, request: NovelRequest, exclude: Sequence[str] = ()) -> None:
        self.title = str(request.get("title") or "")
        self.genre = str(request.get("genre") or "")
        self.synopsis = str(request.get("synopsis") or "")
        self.lang = "en" if request.get("language") == "en" else "zh"
        self.text, self.bank = phrase_bank(self.lang, self.genre)
        self._seed = hashlib.sha256(
            "\x00".join([self.title, self.genre, self.synopsis, self.lang]).encode()
        ).hexdigest()
        existing = [str(n) for n in request.get("character_names") or []]
        self.taken = {name_key(n) for n in existing + [str(n) for n in exclude]}
        # The outline's people: the author's characters first, then the ones the
        # demo would create next, in the order it would create them.
        # Drawn lazily: the whole sequence is 2,000 draws, 3 ms of the event loop for the few names kept.
        known = {name_key(n) for n in existing}
        fresh = (n for n in self.name_sequence() if name_key(n) not in known)
        self.cast = existing[:CAST_SIZE] + list(itertools.islice(fresh, max(0, CAST_SIZE - len(existing))))

    def dice(self, *salt: object) -> random.Random:
        return random.Random(f"{self._seed}:{':'.join(map(str, salt))}")

    def name_sequence(self) -> Iterator[str]:
        rng = self.dice("names")
        seen: set[str] = set()
        named = synopsis_hero(self.synopsis) if self.lang == "zh" else ""
        if named:
            # The hero the synopsis names is the hero of the plan, and the first character made.
            seen.add(named)
            yield named
        first, last = self.text.given_names, self.text.surnames
        for _ in range(2000):
            if self.lang == "zh":
                given = rng.choice(first) + (rng.choice(first) if rng.random() < 0.6 else "")
                name = rng.choice(last) + given
            else:
                name = f"{rng.choice(first)} {rng.choice(last)}"
            if name not in seen:
                seen.add(name)
                yield name

    def unique(self, candidates: list[str], suffixes: list[str]) -> Iterator[str]:
        """Candidate names not yet taken; then the same with suffixes, so it never runs dry."""
        for suffix in ["", *suffixes]:
            for name in candidates:
                full = f"{name[:1].upper()}{name[1:]}{suffix}"
                if name_key(full) not in self.taken:
                    self.taken.add(name_key(full))
                    yield full
        n = 2
        while True:
            full = f"{candidates[0]} {n}"
            n += 1
            if name_key(full) not in self.taken:
                self.taken.add(name_key(full))
                yield full

    @functools.cached_property
    def hook(self) -> str:
        """The synopsis' first sentence, up to 80 characters."""
        synopsis = self.synopsis.strip()
        end = _SENTENCE_END.search(synopsis)
        first = (synopsis[: end.start() + 1] if end else synopsis).strip().rstrip("。！？!?.")
        if not first:
            return self.text.default_hook.format(item=self.bank.items[0])
        return first if len(first) <= 80 else first[:79] + "…"

    def fills(self, rng: random.Random, **extra: object) -> dict[str, object]:
        """The values the templates take, drawn with ``rng``; ``extra`` adds or overrides some."""
        cast = self.cast + [self.text.someone] * 4
        bank = self.bank
        values: dict[str, object] = {
            "title": self.title or self.text.untitled,
            "genre": (self.genre.lower() if self.lang == "en" else self.genre) or self.text.a_novel,
            "hero": cast[0],
            "ally": cast[1],
            "foe": cast[2],
            "mentor": cast[3],
            "place": rng.choice(bank.places),
            "place2": rng.choice(bank.places),
            "faction": rng.choice(bank.factions),
            "item": rng.choice(bank.items),
            "rule": rng.choice(bank.rules)[0],
            "hook": self.hook,
        }
        values.update(extra)
        return values


_HERO = re.compile(r"(?:少年|少女|青年|主角|女主|男主|名叫|叫做|^)([\u4e00-\u9fff]{2,3})")
_SURNAMES = set(
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜谢邹喻苏潘葛范彭鲁韦马苗方任袁柳唐罗薛雷贺倪汤殷滕毕郝安常乐于傅齐康余顾孟黄穆萧尹姚邵汪毛狄米宋庞熊纪舒屈项祝董梁杜阮蓝季贾江郭林钟徐邱骆高夏蔡田胡霍叶白温楚宁程陆凌"
)
# Characters that end a name when a three-character match runs into the sentence.
_AFTER_NAME = set("在是的了和与被把从向对为将却便就也又才都已说拿捡得来去本自因于")


def synopsis_hero(synopsis: str) -> str:
    """A Chinese synopsis' hero, when it opens with one ("少年林远在山村……"); else ""."""
    for match in _HERO.finditer(synopsis.strip()[:60]):
        name = match.group(1)
        if name[0] not in _SURNAMES:
            continue
        return name[:2] if name[-1] in _AFTER_NAME or len(name) == 2 else name
    return ""


#: Where a synopsis' first sentence ends: at its closing mark, or a full stop before a space.
_SENTENCE_END = re.compile(r"[。！？!?]|\.(?=\s)")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n)([a-z])")


def fill(template: str, values: Mapping[str, object]) -> str:
    # Bank phrases ("the Ninefold Court") may open a sentence: capitalise sentence starts.
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), template.format_map(dict(values)))
