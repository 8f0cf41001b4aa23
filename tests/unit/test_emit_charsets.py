"""The emitter's character classes, written as the small ranges outside YAML's printable set
(fast to compile), match exactly the characters the printable set's own ranges say."""

from __future__ import annotations

import re

import pytest

from meshcanary.render import emit

PRINTABLE = r"\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff"
EVERY = "".join(map(chr, range(0x110000)))


@pytest.mark.parametrize(
    ("pattern", "written"),
    [
        (emit._LITERAL_SAFE, rf"[\n{PRINTABLE}]*"),
        (emit._UNSAFE, rf'[^{PRINTABLE}]|["\\]'),
    ],
)
def test_each_class_is_its_printable_ranges(pattern: re.Pattern[str], written: str) -> None:
    single = re.compile(pattern.pattern.removesuffix("*"))
    expected = re.compile(written.removesuffix("*"))
    assert [c for c in EVERY if single.fullmatch(c)] == [c for c in EVERY if expected.fullmatch(c)]
