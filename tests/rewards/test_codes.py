import re

from rewards import codes


def test_generated_codes_are_grouped_readable_and_unambiguous():
    batch = {codes.generate() for _ in range(2000)}
    assert len(batch) == 2000
    for code in batch:
        assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
        assert not set(code) & set("01OIL")


def test_codes_are_looked_up_case_and_space_insensitively():
    assert codes.normalise("  abcd-efgh-jkmn \n") == "ABCD-EFGH-JKMN"
