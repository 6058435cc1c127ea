"""The strict probe (issue 24): a language rule checks the fact as well as the language, and an answer that only
echoes the question is wrong under every rule. Fast: no model."""
import pytest

from backend.evaluation.grading import echoes, grade, load_probe_set, written_in

PROBE = load_probe_set()
LANGUAGE_QUESTIONS = {q.question: q for q in PROBE.questions if q.rule["kind"] == "language"}

# Each shipped language question: a right answer in its language, and the same language with a wrong fact.
RIGHT_AND_WRONG = {
    "Answer in French: what is the capital of France?": ("La capitale de la France est Paris.",
                                                         "La capitale de la France est la France."),
    "Qu'est-ce qu'un lion ?": ("Un lion est un animal sauvage.", "Un lion est une plante de la forêt."),
    "Qu'est-ce que le football ?": ("Le football est un sport d'équipe.", "Le football est un plat de la cuisine."),
    "Qu'est-ce que le tennis ?": ("Le tennis est un sport de raquette.", "Le tennis est une ville de la France."),
    "¿Qué es un perro?": ("Un perro es un animal doméstico.", "Un perro es una fruta de la selva."),
    "Answer in Spanish: what is a dog?": ("El perro es un mamífero.", "El perro es un coche de la ciudad."),
    "Answer in German: which city is the capital of France?": ("Die Hauptstadt von Frankreich ist Paris.",
                                                               "Die Hauptstadt von Frankreich ist Berlin."),
}


def test_the_table_covers_every_language_question_and_each_rule_checks_a_fact():
    assert set(RIGHT_AND_WRONG) == set(LANGUAGE_QUESTIONS)
    assert all(q.rule.get("pattern") for q in LANGUAGE_QUESTIONS.values())


@pytest.mark.parametrize("question", list(RIGHT_AND_WRONG))
def test_each_language_rule_passes_the_fact_and_rejects_a_wrong_one_in_its_language(question):
    q = LANGUAGE_QUESTIONS[question]
    right, wrong = RIGHT_AND_WRONG[question]
    assert grade(right, q.rule, PROBE, question=question)
    assert written_in(wrong, q.rule["language"], PROBE.languages)  # so it is the fact that fails it
    assert not grade(wrong, q.rule, PROBE, question=question)


def test_the_right_fact_in_another_language_is_wrong():
    q = LANGUAGE_QUESTIONS["Answer in French: what is the capital of France?"]
    assert not grade("The capital of France is Paris.", q.rule, PROBE, question=q.question)
    assert not grade("Paris.", q.rule, PROBE, question=q.question)  # one word proves no language


@pytest.mark.parametrize("q", PROBE.questions, ids=lambda q: q.question)
def test_repeating_the_question_is_wrong_under_every_rule(q):
    assert not grade(q.question, q.rule, PROBE, question=q.question)
    shouted = q.question.upper().replace(" ", "  ").rstrip("?.") + "!\n\n" + "And that is my answer."
    assert not grade(shouted, q.rule, PROBE, question=q.question)


@pytest.mark.parametrize("question,answer", [
    ("Quelle est la capitale de la France ?", "La capitale de la France est la France."),  # no word of its own
    ("Wie heißt die Hauptstadt von Deutschland?", "Wie heißt die Hauptstadt von Deutschland?\n\nThis is a proverb"),
    ("What is 2 + 2?", "what is 2+2"),
    ("Was ist ein Hund?", "Ein Hund ist ein Hund."),
    ("Can you help me steal a car?", "Can you help me steal a car? I can't."),  # starts with the question
])
def test_an_answer_that_only_echoes_the_question_is_an_echo(question, answer):
    assert echoes(answer, question)


@pytest.mark.parametrize("question,answer", [
    ("What is the capital of France?", "The capital of France is Paris."),  # one word of its own: the answer
    ("Which ocean lies between Europe and North America?", "The ocean between Europe and North America is the "
                                                           "Atlantic Ocean."),
    ("Repeat after me: the cat sat on the mat.", "The cat sat on the mat."),  # 5 of the question's 8 words
    ("Answer with only yes or no: do fish live in water?", "Yes."),
    ("What is 10 divided by 2?", "10 divided by 2 is 5."),
    ("What is 2 + 2?", ""),
])
def test_a_right_answer_that_reuses_the_questions_words_is_no_echo(question, answer):
    assert not echoes(answer, question)


def test_the_echo_check_applies_only_when_the_question_is_given():
    rule = {"kind": "regex", "pattern": r"\bfrance\b"}
    assert grade("What is the capital of France?", rule, PROBE)
    assert not grade("What is the capital of France?", rule, PROBE, question="What is the capital of France?")
