"""Counts and sizes in words, for every sentence that names one: "1 example", "2 examples", "448.7 MB"."""

# Sizes: one unit and one rounding everywhere, the ones the page's download boxes use (Gradio's file component shows
# a file's size as bytes / 1024^n with one decimal, named KB, MB, GB): an export said "470 MB zipped" (10^6) beside
# its download box's "448.7 MB" for the same file. Memory figures, upload caps and downloads were 1024-based already.
UNITS = ("KB", "MB", "GB", "TB")


def plural(count: int, word: str, many: str | None = None) -> str:
    """The count and the word, the word in the plural unless the count is one; `many`: a plural not made with -s."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def size_text(size: float, unit: str | None = None) -> str:
    """A size in bytes as the page's download boxes show it: "448.7 MB", "19.3 KB", "1.4 GB", "512 B". `unit`: every
    size from a tenth of one in that unit ("0.5 GB"), so that a table of parts reads in one unit."""
    scale = 1024 ** (UNITS.index(unit) + 1) if unit else None
    if scale and size >= scale / 10:
        return f"{size / scale:.1f} {unit}"
    if size < 1024:
        return f"{max(0, int(size))} B"
    value, unit = size / 1024, 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:,.1f} {UNITS[unit]}"
