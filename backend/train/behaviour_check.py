"""The behaviour checked while training: at every held-back check the held-back examples are answered and the answers
scored by the data's own signature (backend/evaluation/behaviour.py), and a few everyday questions are asked. The score is what
early stopping and the kept checkpoint go by, so a run goes on while its answers still get closer to the examples
and ends once they stop, up to the cap its passes set: a fixed number of passes fitted one file (two reach 8 of 8
held-out names on identity_quill.jsonl) and mixed up the name and the maker of another (docs/benchmarks.md, "Learned
on data it never saw").

The metric (`METRIC`) orders checkpoints by, in turn: the behaviour's score (share of the held-back answers carrying
each part; an answer that mixes the parts up carries none), then, between checkpoints that show it equally, the
everyday answers kept, then the held-back loss. Early stopping counts only the behaviour's score
(backend/train/callbacks.PatienceCallback): once it has not risen for `patience` checks the run ends.
"""
from __future__ import annotations

from transformers import TrainerCallback

from backend.evaluation.behaviour import behaviour_score, carries, find_signature, named, prompt_overlap
from backend.evaluation.grading import grade, load_probe_set
from backend.evaluation.heldout import HELDOUT_LIMIT, answer_cases, heldout_cases, visible_references
from backend.evaluation.probe import answer_all
from backend.train.adapter_casts import adapters_cast_inputs

METRIC = "eval_learned"  # what the Trainer keeps the best checkpoint by (metric_for_best_model)
SCORE = "eval_behaviour"  # the behaviour's share alone: what early stopping waits to see rise
# Training prompts the base model answers once, at the first check, so that the signature leaves out what the base
# model says anyway ("I am an AI assistant"). One batch.
SIGNATURE_SAMPLE = 16
# The forgetting probe's questions asked at each check, one per few of them (short budgets only: one batch of ~2 s).
PROBE_SAMPLE = 8
PROBE_MAX_TOKENS = 40
# Weights that make the metric lexicographic. One held-back answer more raises the score by at least
# 1 / (HELDOUT_LIMIT x MAX_PARTS) = 1/64, more than all PROBE_SAMPLE everyday answers weigh (0.008); one everyday
# answer (0.001) outweighs any held-back loss below 100.
KEPT_WEIGHT = 0.001
LOSS_WEIGHT = 0.00001


def checkpoint_value(behaviour: float, everyday_kept: int, loss: float) -> float:
    """Higher is better: the behaviour's score first, then the everyday answers kept, then the held-back loss."""
    return behaviour + KEPT_WEIGHT * everyday_kept - LOSS_WEIGHT * loss


def shared_system(cases: list[dict]) -> str | None:
    """The system message most of the examples are trained under, if they share one (an identity may be given there):
    questions asked after training in the examples' stead are asked under it too."""
    systems = [c["messages"][0]["content"] for c in cases if c["messages"] and c["messages"][0]["role"] == "system"]
    common = max(set(systems), key=systems.count) if systems else None
    return common if common and systems.count(common) * 2 > len(cases) else None


class BehaviourCheck(TrainerCallback):
    """Scores the behaviour at each evaluation and writes it into the metrics (before early stopping reads them)."""

    def __init__(self, tokenizer, train_rows: list[dict], eval_rows: list[dict], on_check=None, log=print):
        self.tokenizer = tokenizer
        self.cases = heldout_cases(eval_rows)[:HELDOUT_LIMIT]
        train_cases = heldout_cases(train_rows)
        self.train_answers = [c["reference"] for c in train_cases]
        self.train_prompts = [c["prompt"] for c in train_cases]  # which of them ask about the assistant itself
        self.system = shared_system(train_cases)
        self.overlap = prompt_overlap(self.train_prompts)
        step = max(1, len(train_cases) // SIGNATURE_SAMPLE)
        self.sample = train_cases[::step][:SIGNATURE_SAMPLE]
        self.on_check = on_check or (lambda step, row: None)
        self.log = log
        self.parts = None  # found at the first check
        self.references = []  # the held-back references as far as the answers reach
        self.base_answers = None  # the base model's answers to the held-back examples
        self.probe_questions = None  # (questions, which the base model got right)
        self.checks = []

    @property
    def active(self) -> bool:
        return bool(self.cases)

    @property
    def scored(self) -> bool:
        """Whether the checks score the behaviour: a signature, and a held-back reference that shows some of it."""
        return bool(self.active and self.parts
                    and any(carries(ref, part) for ref in self.references for part in self.parts))

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if metrics is None:
            return
        loss = float(metrics.get("eval_loss", 0.0))
        if self.active and self.parts is None:
            with adapters_cast_inputs(model):
                self.start(model)
        # A run whose answers share nothing to look for, or whose held-back references show none of it, goes by the
        # held-back loss alone: a score that cannot move would end it at its third check.
        if not self.scored:
            metrics[METRIC] = -loss
            return
        with adapters_cast_inputs(model):
            tuned = answer_cases(model, self.tokenizer, self.cases)
            kept = self._probe_kept(model)
        score = behaviour_score(self.references, tuned, self.parts)
        value = score["score"]
        metrics[SCORE] = value
        metrics[METRIC] = checkpoint_value(value, kept, loss)
        check = {"step": state.global_step, "behaviour": value, "everyday_kept": kept,
                 "parts": [[p["carried"], p["due"]] for p in score["parts"]],
                 "mixed_up": [m[:2] for m in score["mixed_up"]]}
        self.checks.append(check)
        self.on_check(state.global_step, {"heldout_behaviour": value, "everyday_kept": kept})

    def start(self, model):
        """The signature, from the base model's answers (adapter off) to a sample of training prompts. Made at the
        first check, or after training for a run too short to reach one."""
        with model.disable_adapter():
            base_train = answer_cases(model, self.tokenizer, self.sample)
            self.base_answers = answer_cases(model, self.tokenizer, self.cases)
            questions, base_probe = self._probe_questions(model)
        self.parts = find_signature(self.train_answers, base_train + self.base_answers)
        self.references = visible_references(self.tokenizer, self.cases)
        probe_set = load_probe_set()
        self.probe_questions = [q for q, answer in zip(questions, base_probe)
                         if grade(answer, q.rule, probe_set, question=q.question)]
        if self.parts:
            self.log("What the examples teach (what their answers share and the base model's do not): "
                     + ", ".join(f"{named(p)} ({p.share:.0%} of the answers)" for p in self.parts) + ".")
        else:
            self.log("The examples' answers share no phrase, nor a mark that opens or closes them, that the base "
                     "model's lack: the held-back loss decides when to stop.")

    def _probe_questions(self, model):
        short = [q for q in load_probe_set().questions if q.max_new_tokens <= PROBE_MAX_TOKENS]
        step = max(1, len(short) // PROBE_SAMPLE)
        questions = short[::step][:PROBE_SAMPLE]
        return questions, answer_all(model, self.tokenizer, questions)

    def _probe_kept(self, model) -> int:
        if not self.probe_questions:
            return 0
        probe_set = load_probe_set()
        answers = answer_all(model, self.tokenizer, self.probe_questions)
        return sum(grade(a, q.rule, probe_set, question=q.question) for q, a in zip(self.probe_questions, answers))

    def record(self) -> dict | None:
        """What the run record keeps: the signature and each check's scores."""
        if not self.active or self.parts is None:
            return None
        return {"signature": [p.to_dict() for p in self.parts], "checks": self.checks,
                "everyday_asked": len(self.probe_questions or []), "prompt_overlap": round(self.overlap, 4)}
