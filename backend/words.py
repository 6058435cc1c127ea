"""Counts in words, for every sentence that names one: "1 example", "2 examples", "1,200 rows"."""


def plural(count: int, word: str, many: str | None = None) -> str:
    """The count and the word, the word in the plural unless the count is one; `many`: a plural not made with -s."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"
