"""Which model gave an answer, in words, as Chat and Label name the two sides of an A/B choice ("run “quill,
quick”", "the base model"). Where both sides name the same thing, the names say what made the two answers differ:
one run answering at two temperatures reads "run “quill, quick” (temperature 0.7)" and "... (temperature 1)", not
the same name twice."""
from __future__ import annotations

from backend.answers import Answer, Sampling
from backend.runs import RunStore

SYSTEM_SHOWN = 40  # characters of a system prompt quoted in a side's name


def source_words(db, answer: Answer) -> str:
    """'run “NAME”' for a run's answer, 'the base model' for a base model's."""
    run_id = answer.source.run_id
    return f"run “{RunStore(db).get(run_id)['name']}”" if run_id else "the base model"


def side_names(db, answers: list[Answer]) -> list[str]:
    """Each answer's source in words; for two answers that would read the same, with what differs between them:
    the base model (two base models), else the answer settings the person chose (temperature, longest answer, system
    prompt), else the seed. Nothing differs: the same name twice."""
    names = [source_words(db, a) for a in answers]
    if len(answers) != 2 or names[0] != names[1]:
        return names
    first, second = answers
    if first.source.model != second.source.model:
        return [f"{name} ({a.source.model})" for name, a in zip(names, answers)]
    differing = sampling_differences(first.sampling, second.sampling)
    return [f"{name} ({words})" for name, words in zip(names, differing)] if differing else names


def sampling_differences(a: Sampling, b: Sampling) -> list[str] | None:
    """The settings that differ between two samplings, one phrase per side ('temperature 0.7, at most 64 tokens');
    the seed only when nothing else differs (each side draws its own); None when they are the same."""
    chosen = [(f"temperature {a.temperature:g}", f"temperature {b.temperature:g}")
              if a.temperature != b.temperature else None,
              (f"at most {a.max_new_tokens} tokens", f"at most {b.max_new_tokens} tokens")
              if a.max_new_tokens != b.max_new_tokens else None,
              (_system_words(a.system), _system_words(b.system)) if (a.system or "") != (b.system or "") else None]
    chosen = [pair for pair in chosen if pair]
    if not chosen and a.seed != b.seed:
        chosen = [(_seed_words(a.seed), _seed_words(b.seed))]
    if not chosen:
        return None
    return [", ".join(pair[side] for pair in chosen) for side in (0, 1)]


def _system_words(system: str | None) -> str:
    if not system:
        return "no system prompt"
    short = system if len(system) <= SYSTEM_SHOWN else system[:SYSTEM_SHOWN - 1].rstrip() + "…"
    return f"system prompt “{short}”"


def _seed_words(seed: int | None) -> str:
    return "no fixed seed" if seed is None else f"seed {seed}"
