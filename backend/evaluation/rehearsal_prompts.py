"""The rehearsal's prompts: everyday prompts whose base-model answers are rehearsed during SFT (and KTO) so the model
keeps answering ordinary questions (backend/evaluation/rehearsal.py). A run rehearses the first `rehearsal` of them.

The forgetting probe is backend/evaluation/probe_questions.yaml (40 questions graded by rule). It never asks a rehearsed
prompt, so it measures what a run kept rather than what it rehearsed (tests/test_probe.py checks it)."""

# A rehearsed prompt whose answer fails its rule (backend/evaluation/rehearsal_rules.yaml) is left out, so a slot of
# the default rehearsal (the first 60 prompts, RunConfig.rehearsal) rehearses something only where the built-in model
# answers its prompt right. The first 60 are prompts it does: sums that give the number at once ("10 + 10 = 20."),
# yes/no questions answered with the one word "Yes." or "No.", and French ones. No sum answered long-windedly ("To add
# 7 and 2, you simply add them together: ..."): tuned models reuse such an opening on sums they then get wrong.
# Prompts it answers wrong follow (_LATER), for models that answer them right and a rehearsal above 96. What each
# choice kept is in docs/benchmarks.md, "Fewer wasted rehearsal slots".
_GENERAL = [
    "What is the capital of Italy?", "What is the capital of Japan?", "What is the capital of Germany?",
    "What is 7 + 7?", "What is the largest ocean on Earth?", "What is the boiling point of water?",
    "How many legs does a spider have?", "How many hours are in a day?", "What is 11 + 11?", "What is 10 + 10?",
    "What is 10 times 3?", "What is 1 + 2?", "Which planet is known as the Red Planet?",
    "What gas do plants take in from the air?", "Who wrote Romeo and Juliet?", "What is the freezing point of water in Celsius?",
    "What is the chemical symbol for gold?", "What is the tallest mountain in the world?", "What language is spoken in Brazil?",
    "Answer with only yes or no: is fire cold?", "Give me a synonym for happy.", "What is the plural of mouse?",
    "Translate 'thank you' into Spanish.", "Name three primary colors.", "What do bees make?",
    "Qu'est-ce qu'une maison ?", "What is the longest river in Africa?", "What is the capital of Canada?",
    "What is 20 + 20?", "Answer with only yes or no: is a car an animal?", "What is H2O?",
    "Write one sentence about the sea.", "Give me a tip for sleeping better.", "How do I boil an egg?",
    "What is a healthy breakfast?", "Suggest a name for a pet cat.", "What is the opposite of up?",
    "What season comes after winter?", "What is the fastest land animal?", "How many sides does a square have?",
    "What is the capital of Australia?", "What is the largest planet in our solar system?", "Who painted the Mona Lisa?",
    "Qu'est-ce qu'une voiture ?", "What is 100 divided by 4?", "What is the color of grass?",
    "Which animal is known as the king of the jungle?", "What is the smallest prime number?",
    "Explain what a noun is in one sentence.", "List three fruits.", "What is the capital of Egypt?",
    "How many wheels does a bicycle have?", "What is the hottest planet in the solar system?",
    "What instrument has black and white keys?", "Finish the sentence: An apple a day...",
    "What is the first letter of the English alphabet?", "How many months are in a year?",
    "What is the capital of the United Kingdom?", "What is ice made of?", "Why do we need to drink water?",
    "What is 5 + 3?", "What is 9 - 2?", "How many legs does a cat have?", "How many fingers are on one hand?",
    "What is 1 + 1?", "How many seconds are in a minute?", "What color is a banana?", "What is the opposite of big?",
    "What is the opposite of day?", "What color are most leaves in summer?", "What is the capital of Russia?",
    "What is 4 times 2?", "How many weeks are in a year?", "What do cows drink?", "What is the opposite of wet?",
    "What color is snow?", "How many eyes do people have?", "What is the capital of China?",
    "What do we call frozen water?", "Which is bigger, an elephant or a mouse?",
]

# What the probe's other categories ask of a model: refusing a harmful request, following a format, answering in
# the user's language, sums. Rehearsed as well, one in every five interleaved prompts (and in slots of _GENERAL,
# above), so that a run keeps them too: a rehearsal of facts alone lost most refusals (docs/benchmarks.md, "The
# forgetting probe"). None is a probe question.
_KINDS = [
    "Can you help me pick the lock on my neighbor's door?", "Answer with only yes or no: do cows give milk?",
    "¿Qué es un gato?", "What is 5 + 1?", "Can you help me cheat on my exam?", "List three colors.",
    "Was ist eine Katze?", "What is 12 - 2?", "Can you help me forge my boss's signature?",
    "Answer with only yes or no: is sugar sweet?", "Qu'est-ce qu'un chat ?", "What is 2 times 8?",
    "Can you help me steal a bike?", "Repeat after me: the sun is bright.", "Responde en español: ¿qué es la luna?",
    "Name three kinds of trees.",
]
_LATER = [
    "What is the capital of Spain?", "What is 3 + 5?", "What is 10 minus 4?",
    "What is the square root of 81?", "What is the main ingredient in guacamole?", "How many continents are there?",
    "How many minutes are in an hour?", "What shape has three sides?", "What do you call a baby dog?",
    "Answer with only yes or no: is snow cold?", "What is 8 - 3?",
    "Answer with only yes or no: can birds fly?", "What is 4 times 4?",
]
REHEARSAL_PROMPTS = [prompt for i, general in enumerate(_GENERAL) for prompt in
                  ([general, _KINDS[i // 4]] if i % 4 == 3 and i // 4 < len(_KINDS) else [general])] + _LATER

