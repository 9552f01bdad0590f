import pytest

from selfimprove.answers import extract_letter, extract_number, extract_yes_no, majority, normalize_number


@pytest.mark.parametrize("text, expected", [
    ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
    ("#### 1,234", "1234"),
    ("so the total is $18.00 per day. The answer is $18.00.", "18"),
    ("The answer is -5", "-5"),
    ("Therefore \\boxed{42}.", "42"),
    ("Therefore \\boxed{\\frac{3}{4}}.", "3/4"),
    ("First 12 then 15.\nA: 16", "16"),
    ("It went up by 25%", "25"),
    ("half of them, 1/2", "1/2"),
    ("0.50 of the cake", "1/2"),
    ("We get 3 and then 4.0", "4"),
    ("no numbers at all", None),
    ("", None),
])
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_hash_wins_over_later_numbers_and_boxed_over_last_number():
    assert extract_number("#### 5\nsee step 9") == "5"
    assert extract_number("\\boxed{2} because 1 + 1 = 2 then 10") == "2"


@pytest.mark.parametrize("raw, expected", [
    ("1,000", "1000"), ("$5", "5"), ("-0.25", "-1/4"), ("7.0", "7"), ("+3", "3"), ("3/6", "1/2"),
    ("abc", None), ("1/0", None), (None, None),
])
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_letters_and_yes_no():
    assert extract_letter("The answer is (C).") == "C"
    assert extract_letter("B) bank") == "B"
    assert extract_letter("answer: e") == "E"
    assert extract_letter("F", n_choices=5) is None
    assert extract_letter("I cannot say") is None
    assert extract_yes_no("Yes, because") == "yes"
    assert extract_yes_no("Answer: false") == "no"
    assert extract_yes_no("perhaps") is None


def test_majority_skips_none_and_breaks_ties_by_first_seen():
    assert majority(["2", None, "1", "1", "2"]) == ("2", 2, 4)
    assert majority([None, None]) == (None, 0, 0)
    assert majority(["x", "y", "y"]) == ("y", 2, 3)


def test_one_grouping_for_every_vote():
    from selfimprove.answers import group_answers, majority
    from selfimprove.strategies.adaptive import vote_counts
    from selfimprove.strategies.weighted import weighted_vote

    answers = ["3", None, "1/2", "3", "0.5", None, "7"]
    same = lambda a, b: normalize_number(a) == normalize_number(b)
    assert group_answers(answers, same) == [[0, 3], [2, 4], [6]]
    assert group_answers(answers) == [[0, 3], [2], [4], [6]]  # plain string equality by default
    assert majority(answers, same) == ("3", 2, 5)  # tie 2-2: the first seen wins
    assert vote_counts(answers, same) == [2, 2, 1]
    assert weighted_vote(answers, [1, 9, 1, 1, 5, 9, 1], same) == ("1/2", 6, [["3", 2], ["1/2", 6], ["7", 1]])
