"""Did it learn, did it keep: the behaviour's signature, the held-back answers, the forgetting probe (probe, its
questions and their rules in grading), the rehearsal (rehearsal, rehearsal_prompts), the diagnosis and the card."""
