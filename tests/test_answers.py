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


# ---- expressions after a final-answer marker: evaluated or rejected, never read as a fraction --------------

@pytest.mark.parametrize("text, fractions, expected", [
    ("The answer is 200 / 2 = 100 / 2 = 50", True, "50"),       # the value after the last '='
    ("The answer is 200 / 2 = 100 / 2 = 50", False, "50"),
    ("So the answer is 3 + 4.", True, "7"),                      # an expression without '=' is evaluated
    ("The answer is (3 + 4) * 2 pens.", True, "14"),
    ("The answer is 15 x 5 = 75 pens.", True, "75"),
    ("The answer is $10,000.\n\nThe answer is $10.", True, "10"),  # the last marker wins
    ("The answer is 4 bolts of blue fiber in a robe.", True, "4"),
    ("The answer is **18**.", True, "18"),
    ("The answer is 12.5.", True, "25/2"),
    ("which is 16/36", True, "4/9"),                             # a task that expects fractions
    ("which is 16/36", False, None),                             # GSM8K: an unevaluated division is no answer
    ("The answer is 16 / 36 = 0.25 eggs.", False, "1/4"),
    ("The answer is 200/2.", False, "100"),                      # a division that is whole is fine
    ("The answer is 5 / 0.", True, None),                        # cannot be evaluated: rejected
    ("#### 7 * 6", True, "42"),
    ("Tom has 29 apples - 14 = 12 apples left.", True, "12"),
    ("The answer is 007.", True, "7"),
])
def test_extract_number_evaluates_the_final_expression(text, fractions, expected):
    assert extract_number(text, fractions=fractions) == expected


@pytest.mark.parametrize("expr, expected", [
    ("1 + 2 * 3", "7"), ("-(2 - 5)", "3"), ("$1,200 / 4", "300"), ("50%", "50"), ("1 ÷ 4", "1/4"),
    ("2 ** 10", None), ("__import__('os')", None), ("1/0", None), ("3 +", None), ("", None),
])
def test_evaluate_expression_is_safe_and_exact(expr, expected):
    from selfimprove.answers import evaluate_expression, format_fraction

    value = evaluate_expression(expr)
    assert (None if value is None else format_fraction(value)) == expected


def test_yes_no_and_text_answers_read_the_final_answer():
    from selfimprove.answers import extract_text, normalize_text

    assert extract_yes_no("Ethanol is made from corn. So the answer is no.") == "no"
    assert extract_yes_no("No, it is not.") == "no"
    assert extract_yes_no("The answer is: Yes") == "yes"
    # a chain of thought ending in a marked answer is compared by that answer, not by its first line
    cot = "The last letter of 'Elon' is 'n'. The last letter of 'Musk' is 'k'.\nSo the answer is \"nk\"."
    assert extract_text(cot) == "nk"
    assert extract_text("Paris") == "paris" and extract_text("New York City.") == "new york city"
    assert extract_text("Let me think.\nParis.") is None  # a chain of thought without a marked answer
    assert extract_text("Imagine a sonnet where each letter represents a word.") is None
    assert extract_text("  \n") is None and normalize_text(" 'NK' ") == "nk"


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
