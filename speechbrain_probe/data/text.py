"""A sentence generator written for this project: word lists and grammar templates.

The built-in corpus needs varied, real English sentences with no third-party
text. :class:`SentenceGenerator` fills about thirty grammar templates
(statements, questions, commands, clauses with *when*/*because*/*that*, lists,
numbers, times of day) from hand-written word lists, inflecting nouns (plural)
and verbs (past, participle, third person, *-ing*) by rule plus a table of
irregular forms. The word forms it can produce number well over a thousand.

Transcripts are normalised like LibriSpeech with :func:`normalize_transcript`:
upper case, apostrophes kept, all other punctuation removed.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["SentenceGenerator", "normalize_transcript", "vocabulary"]

# --------------------------------------------------------------------------
# word lists
# --------------------------------------------------------------------------

PEOPLE = """
man woman boy girl child baby teacher doctor farmer driver baker painter
writer singer player student worker nurse soldier sailor pilot captain king
queen prince princess judge lawyer artist cook waiter neighbour friend
stranger visitor guest traveller hunter fisherman gardener miner merchant
officer guard clerk priest doctor dancer musician poet engineer builder
carpenter tailor butcher shepherd pupil uncle aunt cousin brother sister
father mother daughter son husband wife grandfather grandmother nephew niece
""".split()

ANIMALS = """
dog cat horse cow sheep pig goat rabbit mouse bird duck goose chicken owl
eagle crow fox wolf bear deer lion tiger monkey elephant snake frog fish
whale dolphin bee spider butterfly squirrel camel donkey parrot swan
""".split()

THINGS = """
book letter table chair door window box bag basket bottle cup glass plate
bowl knife spoon fork key lamp candle clock watch coat hat shoe boot shirt
dress glove ring coin card ticket map picture photograph mirror pen pencil
paper envelope parcel newspaper magazine blanket pillow bed carpet curtain
bucket rope ladder hammer nail wheel engine machine radio telephone computer
camera umbrella suitcase wallet purse basket barrel chest drawer shelf
cupboard kettle pot pan oven stove fire brush broom comb towel soap bell
drum guitar piano violin trumpet whistle flag sign fence gate wall roof
floor ceiling stair bridge road path street tower statue fountain
boat ship train bus car bicycle truck wagon cart plane rocket tent cabin
""".split()

PLACES = """
house garden kitchen room hall office school church library museum market
shop store bakery hospital station airport harbour village town city farm
field forest wood hill mountain valley river lake sea beach island desert
park palace castle prison factory mill barn stable cottage hotel theatre
restaurant cafe bank square corner kingdom country island
""".split()

NATURE_FOOD = """
tree flower rose leaf branch root grass stone rock sand cloud storm rain snow
wind sun moon star sky wave shadow light fog ice
apple orange lemon banana cherry grape potato tomato onion carrot bean
bread cake cheese butter egg milk tea coffee soup meat sugar salt honey pie
sandwich biscuit
""".split()

ABSTRACT = """
idea story question answer problem plan reason secret promise mistake
message song game lesson dream journey adventure holiday party meeting
letter prize gift surprise chance choice decision rule law price bill
report speech joke noise voice sound smell colour shape number name
""".split()

IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "goose": "geese", "sheep": "sheep", "deer": "deer", "fish": "fish",
    "fisherman": "fishermen", "knife": "knives", "wife": "wives", "leaf": "leaves",
    "shelf": "shelves", "wolf": "wolves", "loaf": "loaves", "potato": "potatoes",
    "tomato": "tomatoes", "hero": "heroes", "foot": "feet", "tooth": "teeth",
    "person": "people",
}  # fmt: skip

ADJECTIVES = """
big small large little tall short long wide narrow deep heavy light old young
new ancient modern fresh quiet loud noisy silent bright dark pale clear cloudy
warm hot cold cool wet dry clean dirty empty full soft hard smooth rough sharp
thin thick strong weak fast slow quick early late rich poor cheap expensive
happy sad angry calm brave proud shy kind cruel gentle clever foolish wise
honest lazy busy tired hungry thirsty sleepy lonely curious careful careless
friendly polite rude strange famous secret simple difficult easy important
useful dangerous safe beautiful ugly pretty lovely pleasant terrible wonderful
perfect broken golden silver wooden red green blue yellow brown black white
grey purple pink orange sweet bitter sour salty delicious round square flat
narrow distant nearby northern southern eastern western huge tiny gentle
patient serious funny strict lucky sudden final whole heavy wild tame
""".split()

ADVERBS = """
quickly slowly quietly loudly carefully suddenly happily sadly gently softly
early late today tomorrow yesterday again always never often sometimes
rarely usually finally soon already still nearly almost together alone
easily badly well politely proudly bravely calmly angrily eagerly kindly
patiently honestly secretly clearly warmly firmly quietly
""".split()

NAMES = """
alice anna arthur ben charles clara daniel david edward ellen emily frank
george grace hannah harry helen henry jack james jane john julia kate lucy
margaret mary michael nora oliver paul peter rachel robert rose sam sarah
thomas victor walter william anne martin laura simon philip susan tom ruth
""".split()

# transitive verbs: base form, or "base past participle" where irregular
TRANSITIVE = [
    "open", "close", "carry", "paint", "clean", "wash", "fix", "mend", "move", "push",
    "pull", "lift", "drop", "watch", "visit", "follow", "help", "call", "answer",
    "ask", "need", "want", "like", "love", "hate", "miss", "count", "cook", "bake",
    "order", "deliver", "borrow", "return", "collect", "gather", "protect", "guard",
    "check", "study", "describe", "remember", "notice", "discover", "explore", "enter",
    "reach", "touch", "kick", "climb", "cross", "fill", "empty", "share",
    "hide hid hidden", "save", "plant", "pick", "fold", "polish", "repair", "prepare",
    "measure", "weigh", "test", "greet", "thank", "warn", "invite", "admire",
    "examine", "destroy", "build built built", "buy bought bought",
    "bring brought brought", "catch caught caught", "find found found",
    "hold held held", "keep kept kept", "leave left left", "lose lost lost",
    "make made made", "meet met met", "pay paid paid", "read read read",
    "sell sold sold", "send sent sent", "teach taught taught", "tell told told",
    "feed fed fed", "hear heard heard", "win won won", "break broke broken",
    "choose chose chosen", "draw drew drawn", "drive drove driven", "eat ate eaten",
    "forget forgot forgotten", "give gave given", "know knew known",
    "ride rode ridden", "see saw seen", "shake shook shaken", "steal stole stolen",
    "take took taken", "throw threw thrown", "wear wore worn", "write wrote written",
    "sing sang sung", "drink drank drunk", "ring rang rung", "cut cut cut",
    "hit hit hit", "put put put", "shut shut shut", "set set set",
]  # fmt: skip

INTRANSITIVE = [
    "arrive", "wait", "laugh", "smile", "cry", "shout", "whisper", "jump", "dance",
    "play", "work", "rest", "travel", "walk", "hurry", "listen", "agree", "appear",
    "disappear", "vanish", "return", "stay", "stop", "start", "happen", "shine",
    "rain", "snow", "fall fell fallen", "rise rose risen", "run ran run",
    "sit sat sat", "sleep slept slept", "stand stood stood", "swim swam swum",
    "fly flew flown", "go went gone", "come came come", "grow grew grown",
    "speak spoke spoken", "wake woke woken", "begin began begun", "sink sank sunk",
    "bloom", "shiver", "wander", "whistle", "sigh", "nod", "knock",
]  # fmt: skip

PREPOSITIONS_PLACE = """
in near behind beside under above inside outside across along through
around towards past over below between
""".split()

# words that never appear in the lists above
TIMES = [
    "in the morning", "in the afternoon", "in the evening", "at night", "at noon",
    "at midnight", "last night", "last week", "last year", "next week", "next month",
    "this morning", "before dinner", "after lunch", "after breakfast",
    "before sunrise", "after sunset", "during the winter", "during the summer",
    "in the spring", "in the autumn", "on monday", "on tuesday", "on wednesday",
    "on thursday", "on friday", "on saturday", "on sunday", "in january",
    "in february", "in march", "in april", "in may", "in june", "in july", "in august",
    "in september", "in october", "in november", "in december", "every day",
    "every evening", "once a week", "twice a year", "a moment ago", "long ago",
    "a few minutes later", "an hour later",
]  # fmt: skip

NUMBERS = """
two three four five six seven eight nine ten eleven twelve thirteen fourteen
fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty
seventy eighty ninety hundred
""".split()

FEELINGS = """
glad sorry surprised afraid sure certain proud worried pleased amazed
""".split()

SPEECH_VERBS = ["said", "thought", "knew", "heard", "believed", "explained",
                "promised", "decided", "noticed", "remembered", "admitted",
                "wrote", "told us"]  # fmt: skip

# --------------------------------------------------------------------------
# inflection
# --------------------------------------------------------------------------

_VOWELS = "aeiou"
_DOUBLE_FINAL = {"drop", "stop", "nod", "plan", "shop", "rob", "hug", "jog",
                 "grab", "chat", "travel", "admit", "begin", "swim", "run",
                 "sit", "cut", "hit", "put", "shut", "set", "win"}  # fmt: skip


def _plural(noun: str) -> str:
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in _VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


def _regular_past(base: str) -> str:
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in _VOWELS:
        return base[:-1] + "ied"
    if base in _DOUBLE_FINAL:
        return base + base[-1] + "ed"
    return base + "ed"


def _third_person(base: str) -> str:
    if base == "go":
        return "goes"
    if base.endswith(("s", "x", "z", "ch", "sh", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in _VOWELS:
        return base[:-1] + "ies"
    return base + "s"


def _ing(base: str) -> str:
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")) and base != "be":
        return base[:-1] + "ing"
    if base in _DOUBLE_FINAL:
        return base + base[-1] + "ing"
    return base + "ing"


class _Verb:
    __slots__ = ("base", "past", "participle", "third", "ing")

    def __init__(self, entry: str):
        parts = entry.split()
        self.base = parts[0]
        if len(parts) == 3:
            self.past, self.participle = parts[1], parts[2]
        else:
            self.past = self.participle = _regular_past(self.base)
        self.third = _third_person(self.base)
        self.ing = _ing(self.base)


def _verbs(entries: list[str]) -> list[_Verb]:
    out, seen = [], set()
    for entry in entries:
        verb = _Verb(entry)
        if verb.base not in seen:
            seen.add(verb.base)
            out.append(verb)
    return out


_TRANSITIVE = _verbs(TRANSITIVE)
_INTRANSITIVE = _verbs(INTRANSITIVE)
_NOUNS = sorted(set(PEOPLE + ANIMALS + THINGS + PLACES + NATURE_FOOD + ABSTRACT))
_CONCRETE = sorted(set(ANIMALS + THINGS + NATURE_FOOD))
_BEINGS = sorted(set(PEOPLE + ANIMALS))
_PLACES = sorted(set(PLACES))
_ADJ = sorted(set(ADJECTIVES))
_ADV = sorted(set(ADVERBS))
_NAMES = sorted(set(NAMES))


def _article(word: str) -> str:
    return "an" if word[0] in _VOWELS and not word.startswith(("use", "uni")) else "a"


# --------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------


class SentenceGenerator:
    """Random English sentences from grammar templates, deterministic per seed.

    Arguments
    ---------
    seed : int
        Seed of the generator's own random stream.
    min_words, max_words : int
        Sentences outside this length (in words) are redrawn.

    Example
    -------
    >>> gen = SentenceGenerator(seed=3)
    >>> s = gen.sentence()
    >>> s == s.upper() and len(s.split()) >= 3
    True
    >>> SentenceGenerator(seed=3).sentence() == s
    True
    """

    def __init__(self, seed: int = 0, min_words: int = 4, max_words: int = 14):
        if min_words < 3 or max_words < min_words:
            raise ValueError(
                f"need 3 <= min_words <= max_words, got {min_words}, {max_words}"
            )
        self.rng = np.random.default_rng(seed)
        self.min_words = min_words
        self.max_words = max_words

    # small helpers -------------------------------------------------------
    def _pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def _maybe(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def _np(self, nouns=None, plural: bool | None = None, adj_p: float = 0.4) -> str:
        """Noun phrase: determiner, optional adjective(s), noun."""
        noun = self._pick(nouns or _NOUNS)
        if plural is None:
            plural = self._maybe(0.3)
        adjs = []
        if self._maybe(adj_p):
            adjs.append(self._pick(_ADJ))
            if self._maybe(0.15):
                second = self._pick(_ADJ)
                if second != adjs[0]:
                    adjs.append(second)
        if plural:
            noun = _plural(noun)
            det = self._pick(["the", "the", "some", "those", "these", "many", "few",
                              "his", "her", "our", "their", self._pick(NUMBERS)])  # fmt: skip
        else:
            det = self._pick(["the", "the", "the", "a", "a", "this", "that", "his",
                              "her", "my", "your", "our", "every"])  # fmt: skip
        words = adjs + [noun]
        if det == "a":
            det = _article(words[0])
        return " ".join([det] + words)

    def _subject(self) -> tuple[str, bool]:
        """Returns a subject and whether it is third person singular."""
        r = self.rng.random()
        if r < 0.3:
            return self._pick(_NAMES), True
        if r < 0.45:
            pron = self._pick(["i", "we", "they", "you", "he", "she"])
            return pron, pron in ("he", "she")
        plural = self._maybe(0.3)
        return self._np(_BEINGS, plural=plural), not plural

    def _pp(self) -> str:
        return f"{self._pick(PREPOSITIONS_PLACE)} {self._np(_PLACES + _CONCRETE, adj_p=0.3)}"

    def _subject_verb(self, verbs) -> tuple[str, bool, _Verb]:
        """A subject (see :meth:`_subject`), then a verb drawn from ``verbs``."""
        subj, third = self._subject()
        return subj, third, self._pick(verbs)

    # templates ------------------------------------------------------------
    def _t_past_transitive(self):
        subj, _, v = self._subject_verb(_TRANSITIVE)
        tail = ""
        if self._maybe(0.5):
            tail = " " + self._pp()
        elif self._maybe(0.5):
            tail = " " + self._pick(TIMES)
        return f"{subj} {v.past} {self._np()}{tail}"

    def _t_past_intransitive_adverb(self):
        subj, _, v = self._subject_verb(_INTRANSITIVE)
        return f"{subj} {v.past} {self._pick(_ADV)} {self._pp()}"

    def _t_present_habit(self):
        subj, third, v = self._subject_verb(_TRANSITIVE)
        verb = v.third if third else v.base
        return f"{subj} {self._pick(['usually', 'often', 'never', 'always', 'sometimes'])} {verb} {self._np()} {self._pick(TIMES)}"

    def _t_progressive(self):
        plural = self._maybe(0.5)
        subj = self._np(_BEINGS, plural=plural)
        v = self._pick(_INTRANSITIVE + _TRANSITIVE)
        aux = "are" if plural else "is"
        if self._maybe(0.5):
            aux = "were" if plural else "was"
        obj = f" {self._np()}" if v in _TRANSITIVE else ""
        return f"{subj} {aux} {v.ing}{obj} {self._pp()}"

    def _t_future(self):
        subj, _, v = self._subject_verb(_TRANSITIVE)
        modal = self._pick(["will", "can", "should", "must", "might", "could", "would"])
        return f"{subj} {modal} {v.base} {self._np()} {self._pick(TIMES)}"

    def _t_perfect(self):
        subj, third, v = self._subject_verb(_TRANSITIVE)
        aux = "has" if third else "have"
        adv = self._pick(["never", "already", "just", "finally", "recently"])
        return f"{subj} {aux} {adv} {v.participle} {self._np()}"

    def _t_description(self):
        plural = self._maybe(0.3)
        subj = self._np(plural=plural, adj_p=0.2)
        cop = self._pick(
            ["are", "were", "seemed", "looked"]
            if plural
            else ["is", "was", "seemed", "looked"]
        )
        adj1, adj2 = self._pick(_ADJ), self._pick(_ADJ)
        if adj1 == adj2 or self._maybe(0.4):
            return f"{subj} {cop} {self._pick(['very', 'rather', 'quite', 'too', 'so'])} {adj1}"
        return f"{subj} {cop} {adj1} and {adj2}"

    def _t_of_phrase(self):
        a = self._np(_CONCRETE + _PLACES, plural=False, adj_p=0.2)
        b = self._np(_BEINGS, adj_p=0.4)
        return f"{a} of {b} was {self._pick(_ADJ)}"

    def _t_there_were(self):
        n = self._pick(NUMBERS)
        noun = _plural(self._pick(_CONCRETE + _BEINGS))
        adj = f"{self._pick(_ADJ)} " if self._maybe(0.5) else ""
        return f"there were {n} {adj}{noun} {self._pp()}"

    def _t_there_is(self):
        noun = self._pick(_CONCRETE + _BEINGS)
        adj = self._pick(_ADJ)
        return f"there {self._pick(['is', 'was'])} {_article(adj)} {adj} {noun} {self._pp()}"

    def _t_when_clause(self):
        s1, _ = self._subject()
        s2, _, v1 = self._subject_verb(_INTRANSITIVE)
        v2 = self._pick(_TRANSITIVE)
        return f"when {s1} {v1.past} {s2} {v2.past} {self._np()}"

    def _t_because(self):
        s1, _, v1 = self._subject_verb(_INTRANSITIVE)
        adj = self._pick(_ADJ)
        return f"{s1} {v1.past} {self._pick(['because', 'since', 'although', 'until'])} {self._np(plural=False, adj_p=0)} was {adj}"

    def _t_reported(self):
        name = self._pick(_NAMES)
        sv = self._pick(SPEECH_VERBS)
        subj, _, v = self._subject_verb(_TRANSITIVE)
        return f"{name} {sv} that {subj} would {v.base} {self._np()}"

    def _t_question_did(self):
        subj, _, v = self._subject_verb(_TRANSITIVE)
        return f"did {subj} {v.base} {self._np()} {self._pick(TIMES)}"

    def _t_question_wh(self):
        wh = self._pick(["where", "why", "when", "how"])
        aux = self._pick(["did", "will", "can", "should", "could"])
        subj, _, v = self._subject_verb(_TRANSITIVE)
        return f"{wh} {aux} {subj} {v.base} {self._np()}"

    def _t_question_who(self):
        v = self._pick(_TRANSITIVE)
        return f"who {v.past} {self._np()} {self._pp()}"

    def _t_question_is(self):
        noun = self._np(plural=False, adj_p=0)
        return f"is {noun} {self._pick(['still', 'really', 'too', 'very', 'quite'])} {self._pick(_ADJ)}"

    def _t_command(self):
        v = self._pick(_TRANSITIVE)
        start = self._pick(["please ", "", "", "now ", "never "])
        tail = self._pick([" " + self._pick(TIMES), " " + self._pp(), ""])
        return f"{start}{v.base} {self._np()}{tail}"

    def _t_let_us(self):
        v = self._pick(_TRANSITIVE)
        when = self._pick(["dinner", "lunch", "noon", "midnight", "sunset", "sunrise",
                           "breakfast", "tomorrow", "winter", "they arrive"])  # fmt: skip
        return f"let us {v.base} {self._np()} before {when}"

    def _t_opinion(self):
        pron = self._pick(["i", "we", "they", "you"])
        verb = self._pick(["think", "believe", "know", "hope", "feel", "suppose"])
        return (
            f"{pron} {verb} {self._np(plural=False, adj_p=0.2)} is {self._pick(_ADJ)}"
        )

    def _t_feeling(self):
        subj, third = self._subject()
        cop = "was" if third or subj == "i" else "were"
        feel = self._pick(FEELINGS)
        s2, _, v = self._subject_verb(_INTRANSITIVE)
        return f"{subj} {cop} {feel} that {s2} {v.past} {self._pick(_ADV)}"

    def _t_two_names(self):
        a, b = self._pick(_NAMES), self._pick(_NAMES)
        v = self._pick(_INTRANSITIVE)
        place = self._np(_PLACES, plural=False)
        return f"{a} and {b} {v.past} to {place} {self._pick(TIMES)}"

    def _t_list(self):
        subj, _, v = self._subject_verb(_TRANSITIVE)
        items = [_plural(self._pick(_CONCRETE)) for _ in range(3)]
        return f"{subj} {v.past} {items[0]} {items[1]} and {items[2]}"

    def _t_comparison(self):
        a = self._np(plural=False, adj_p=0)
        b = self._np(plural=False, adj_p=0)
        adj = self._pick(["bigger", "smaller", "older", "younger", "faster", "slower",
                          "louder", "quieter", "cheaper", "darker", "brighter",
                          "warmer", "colder", "stronger", "heavier", "longer"])  # fmt: skip
        return f"{a} {self._pick(['is', 'was', 'seemed'])} {adj} than {b}"

    def _t_possession(self):
        name = self._pick(_NAMES)
        noun = self._pick(_CONCRETE)
        return f"{name}'s {noun} {self._pick(['is', 'was'])} {self._pp()}"

    def _t_so_clause(self):
        adj = self._pick(["cold", "dark", "late", "wet", "warm", "quiet", "early",
                          "windy", "noisy", "hot"])  # fmt: skip
        subj, _, v = self._subject_verb(_INTRANSITIVE)
        return f"it was {adj} {self._pick(TIMES)} so {subj} {v.past} {self._pp()}"

    def _t_passive(self):
        plural = self._maybe(0.3)
        obj = self._np(_CONCRETE, plural=plural)
        v = self._pick(_TRANSITIVE)
        aux = "were" if plural else "was"
        return f"{obj} {aux} {v.participle} by {self._np(_BEINGS, plural=False)}"

    def _t_short(self):
        subj, _, v = self._subject_verb(_INTRANSITIVE)
        return f"{subj} {v.past} {self._pick(_ADV)}"

    def _t_wanted_to(self):
        subj, _ = self._subject()
        verb = self._pick(["wanted", "tried", "hoped", "needed", "forgot", "refused",
                           "decided", "planned"])  # fmt: skip
        v = self._pick(_TRANSITIVE)
        return f"{subj} {verb} to {v.base} {self._np()}"

    def _t_numbers(self):
        subj, _ = self._subject()
        n = self._pick(NUMBERS)
        noun = self._pick(
            ["minutes", "hours", "days", "weeks", "miles", "years", "steps", "pages"]
        )
        v = self._pick(_INTRANSITIVE)
        return f"{subj} {v.past} for {n} {noun}"

    # Every template, in a fixed order: a sentence draws its template by
    # position, so the order (and the count) is part of what a seed gives.
    # Keep it, and add a new template at the end (it changes the corpus).
    _TEMPLATES = (
        _t_because, _t_command, _t_comparison, _t_description, _t_feeling,
        _t_future, _t_let_us, _t_list, _t_numbers, _t_of_phrase, _t_opinion,
        _t_passive, _t_past_intransitive_adverb, _t_past_transitive, _t_perfect,
        _t_possession, _t_present_habit, _t_progressive, _t_question_did,
        _t_question_is, _t_question_wh, _t_question_who, _t_reported, _t_short,
        _t_so_clause, _t_there_is, _t_there_were, _t_two_names, _t_wanted_to,
        _t_when_clause,
    )  # fmt: skip

    # public API -------------------------------------------------------------
    def sentence(self) -> str:
        """One normalised sentence (upper case, no punctuation)."""
        while True:
            text = normalize_transcript(self._pick(self._TEMPLATES)(self))
            n = len(text.split())
            if self.min_words <= n <= self.max_words:
                return text

    def sentences(self, n: int) -> list[str]:
        """``n`` sentences (duplicates are redrawn)."""
        out, seen = [], set()
        while len(out) < n:
            s = self.sentence()
            if s not in seen:
                seen.add(s)
                out.append(s)
        return out


def normalize_transcript(text: str) -> str:
    """Normalise a transcript like LibriSpeech: upper case, only letters,
    apostrophes and single spaces.

    Example
    -------
    >>> normalize_transcript("Hello, world!  It's  -- fine.")
    "HELLO WORLD IT'S FINE"
    """
    text = text.upper().replace("-", " ")
    text = re.sub(r"[^A-Z' ]", " ", text)
    text = re.sub(r"(?<![A-Z])'|'(?![A-Z])", " ", text)
    return " ".join(text.split())


def vocabulary(num_sentences: int = 20000, seed: int = 0) -> set[str]:
    """The words used by ``num_sentences`` generated sentences.

    Example
    -------
    >>> len(vocabulary(5000)) > 1000
    True
    """
    gen = SentenceGenerator(seed=seed)
    return {w for _ in range(num_sentences) for w in gen.sentence().split()}
