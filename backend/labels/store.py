"""LabelStore: every judgement is one row of the `labels` table, committed (WAL, full sync) before the call
returns, so a crash or restart loses none. Undo marks a label undone rather than deleting it; undoing a
judgement that replaced an earlier one (the same answer judged again) brings the earlier one back."""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone

from backend.answers import Answer
from backend.errors import TuneloopError

# Every label value, by kind, with the words people see for it (Chat, Label, `labels stats`, the Team tab): the one
# declaration the stores, the counts and the pages read.
VALUE_WORDS = {
    "thumb": {"up": "good", "down": "bad"},
    "ab": {"left": "left answer better", "right": "right answer better", "tie": "tie", "both_bad": "both bad"},
    "edit": {"edit": "correction"},
}
VALUES = {kind: tuple(words) for kind, words in VALUE_WORDS.items()}
MARKS = {"up": "👍", "down": "👎"}  # a thumb's words are shown with its mark
GOOD = "up"  # the thumb that makes a KTO example desirable
PREFERS_ONE = ("left", "right")  # the A/B values that choose an answer (a DPO pair); a tie or "both bad" does not
ORIGINS = ("chat", "label", "api")
OWNER = "owner"  # the labeller of the owner's labels (and of those given before there were accounts)


def value_words(value: str) -> str:
    """A value in words, as the pages say it: '👍 good', 'left answer better'."""
    words = next(words[value] for words in VALUE_WORDS.values() if value in words)
    return f"{MARKS[value]} {words}" if value in MARKS else words


class LabelError(TuneloopError):
    """A label that cannot be stored as given (unknown value, empty prompt or answer)."""


def new_session() -> str:
    """An id grouping one person's labels in one sitting: what undo and the running count refer to."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class LabelStore:
    def __init__(self, db):
        self.db = db

    # --- giving labels ----------------------------------------------------------------------------
    def add_thumb(self, prompt: list[dict], answer: Answer, value: str, **where) -> int:
        """👍 ('up') or 👎 ('down') on one answer. Returns the label's id."""
        return self._add("thumb", value, prompt, answer, **where)

    def add_choice(self, prompt: list[dict], left: Answer, right: Answer, value: str,
                   right_prompt: list[dict] | None = None, blind: bool | None = None, **where) -> int:
        """An A/B judgement of two answers to one prompt: 'left', 'right', 'tie' or 'both_bad'.
        `right_prompt`: the right side's conversation when it differs (a later turn of a side-by-side chat);
        such a choice is kept but makes no DPO pair, which needs one prompt for both answers.
        `blind`: True when the judge was not shown which model gave which answer, False when the names were shown,
        None when not known. Only blind choices count in the win-rates (backend/labels/winrate.py)."""
        if right_prompt is not None:
            _check_prompt(right_prompt)
            right_prompt = None if right_prompt == prompt else right_prompt
        return self._add("ab", value, prompt, left, right=right, right_prompt=right_prompt, blind=blind, **where)

    def add_edit(self, prompt: list[dict], answer: Answer, corrected: str, **where) -> int:
        """A corrected answer: becomes an SFT example (prompt, corrected)."""
        if not str(corrected or "").strip():
            raise LabelError("The corrected answer is empty. Write the answer the model should have given.")
        return self._add("edit", "edit", prompt, answer, corrected=str(corrected).strip(), **where)

    def _add(self, kind: str, value: str, prompt: list[dict], answer: Answer, right: Answer | None = None,
             right_prompt: list[dict] | None = None, corrected: str | None = None, session: str | None = None,
             origin: str = "api", target: str | None = None, labeller: str = OWNER, blind: bool | None = None) -> int:
        if value not in VALUES[kind]:
            raise LabelError(f"'{value}' is not a {kind} label; use one of: {', '.join(VALUES[kind])}.")
        if origin not in ORIGINS:
            raise LabelError(f"Unknown origin '{origin}'; use one of: {', '.join(ORIGINS)}.")
        _check_prompt(prompt)
        row = {"kind": kind, "value": value, "prompt": json.dumps(prompt, ensure_ascii=False),
               **_side(answer, ""), "corrected": corrected, "session": session, "origin": origin,
               "target": target, "labeller": labeller or OWNER, "created": _now(), "undone": 0,
               "blind": None if blind is None else int(bool(blind))}
        if right is not None:
            row.update(_side(right, "_b"))
        if right_prompt is not None:
            row["prompt_b"] = json.dumps(right_prompt, ensure_ascii=False)
        with self.db.atomic():
            cursor = self.db.execute(
                f"insert into labels ({', '.join(row)}) values ({', '.join('?' for _ in row)})", list(row.values()))
            if target is not None:  # a new judgement of the same answer(s) replaces the earlier one
                self.db.execute("update labels set undone = 1, undone_at = ?, replaced_by = ? where target = ? "
                                "and kind = ? and undone = 0 and id != ?",
                                [row["created"], cursor.lastrowid, target, kind, cursor.lastrowid])
        return cursor.lastrowid

    # --- taking back ------------------------------------------------------------------------------
    def undo(self, session: str | None = None) -> dict | None:
        """Take back the latest label still standing (of `session`, when given). Returns it, or None."""
        sql = "select id from labels where undone = 0" + (" and session = ?" if session else "") + \
            " order by id desc limit 1"
        with self.db.atomic():
            label_id = self.db.value(sql, [session] if session else [])
            if label_id is None:
                return None
            self.db.execute("update labels set undone = 1, undone_at = ? where id = ?", [_now(), label_id])
            # the judgement it replaced (the same answer, judged before) stands again
            self.db.execute("update labels set undone = 0, undone_at = null, replaced_by = null "
                            "where replaced_by = ?", [label_id])
        return self.get(label_id)

    # --- reading ----------------------------------------------------------------------------------
    def get(self, label_id: int) -> dict:
        rows = self.db.rows("select * from labels where id = ?", [label_id])
        if not rows:
            raise LabelError(f"No label with id {label_id}.")
        return _decode(rows[0])

    def list(self, kind: str | None = None, session: str | None = None, include_undone: bool = False,
             labeller: str | None = None) -> list[dict]:
        where, params = [], []
        if labeller:
            where.append("coalesce(labeller, 'owner') = ?")
            params.append(labeller)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if session:
            where.append("session = ?")
            params.append(session)
        if not include_undone:
            where.append("undone = 0")
        sql = "select * from labels" + (" where " + " and ".join(where) if where else "") + " order by id"
        return [_decode(r) for r in self.db.rows(sql, params)]


def _side(answer: Answer, suffix: str) -> dict:
    if not isinstance(answer, Answer):
        raise LabelError("An answer to label must come from the model pool (backend.answers.Answer).")
    if not answer.text.strip():
        raise LabelError("The answer is empty: there is nothing to judge. Generate it again.")
    settings = dict(answer.sampling.to_dict(), ended=answer.ended)
    return {"answer" + suffix: answer.text, "model" + suffix: answer.source.model,
            "run_id" + suffix: answer.source.run_id, "settings" + suffix: json.dumps(settings, ensure_ascii=False)}


def _check_prompt(prompt):
    if not isinstance(prompt, list) or not prompt or not all(isinstance(m, dict) and {"role", "content"} <= set(m)
                                                             for m in prompt):
        raise LabelError("A label needs its prompt as a list of messages like {'role': 'user', 'content': '...'}.")
    if prompt[-1]["role"] != "user" or not str(prompt[-1]["content"]).strip():
        raise LabelError("The prompt must end with the user's (non-empty) message that the answer replies to.")


def _decode(row: dict) -> dict:
    row = dict(row)
    row["labeller"] = row.get("labeller") or OWNER
    row["blind"] = None if row.get("blind") is None else bool(row["blind"])  # None: not known (see add_choice)
    for key in ("prompt", "prompt_b", "settings", "settings_b"):
        if row.get(key):
            row[key] = json.loads(row[key])
    return row
