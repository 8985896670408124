"""Class lists in data specs: ``7``, ``0-4`` or ``1,3,5`` / ``0-2,7`` (digits and labelled image files)."""

from __future__ import annotations

import re

_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_class_list(part: str, spec: str, max_class: int, noun: str = "class") -> tuple[int, ...]:
    """The classes ``part`` names, sorted; a ValueError quotes ``spec`` and says what is wrong."""
    classes: list[int] = []
    for item in part.split(","):
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f"{spec!r}: {item!r} is not a {noun}, a range a-b or a comma list of those")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        for value in (lo, hi):
            if value > max_class:
                raise ValueError(f"{spec!r}: class {value} is not a {noun} 0-{max_class}")
        if hi < lo:
            raise ValueError(f"{spec!r}: range {item!r} runs backwards; write {hi}-{lo}")
        for c in range(lo, hi + 1):
            if c in classes:
                raise ValueError(f"{spec!r}: class {c} is listed twice")
            classes.append(c)
    return tuple(sorted(classes))
