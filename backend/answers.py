"""The small types the model pool hands around: who answers (Source), how (Sampling), and what came out (Answer).

Sampling's bounds are declared once, like every training setting, so the chat and label sliders, the CLI and the
pool all accept the same values.
"""
import random
from dataclasses import asdict, dataclass

from backend.config import BUILTIN_MODEL, build, check, declarations, setting


@dataclass(frozen=True)
class Source:
    """Who answers: a base model alone (run_id None) or with a finished run's adapter."""
    model: str = BUILTIN_MODEL
    run_id: str | None = None

    @property
    def name(self) -> str:
        return self.run_id or "base model"


@dataclass(frozen=True)
class Sampling:
    """How an answer is made. temperature 0 is greedy; seed None draws one (and records it)."""
    temperature: float = setting(0.7, "0 gives the same answer every time; higher varies more.",
                                 label="Temperature", min=0.0, max=1.5, group="Answers")
    max_new_tokens: int = setting(128, "The longest answer, in tokens (word pieces).",
                                  label="Longest answer (tokens)", min=1, max=1024, group="Answers")
    seed: int | None = setting(None, "The same seed, settings and message give the same answers. Empty: a new "
                               "one for each message.", label="Seed", min=0, max=2**31 - 1, group="Answers")
    system: str = setting("", "Instructions given to the model before the conversation.",
                          label="System prompt (optional)", group="Answers")

    def __post_init__(self):
        check(self)

    @classmethod
    def of(cls, **values) -> "Sampling":
        """From form, CLI or API values (text, floats from number boxes): coerced and checked like any setting."""
        return build(cls, values)

    def with_seed(self) -> "Sampling":
        return self if self.seed is not None else Sampling(self.temperature, self.max_new_tokens,
                                                           random.randrange(2**31), self.system)

    def to_dict(self) -> dict:
        return asdict(self)


GREEDY = Sampling(temperature=0.0, seed=0)


def decoded(tokenizer, ids: list[int]) -> str:
    """The text of generated tokens, without a character cut in half at the end: an answer cut off at its token
    budget, or shown while it streams, can end inside an emoji's bytes, which decode to "\ufffd" (seen in the Runs
    tab's held-back table as "�")."""
    return tokenizer.decode(ids, skip_special_tokens=True).strip().rstrip("\ufffd").rstrip()


def sampling_declarations():
    return declarations(Sampling)


@dataclass
class Answer:
    text: str
    source: Source
    sampling: Sampling
    ended: bool = True  # False: cut off at max_new_tokens
