"""Did it work? What the Runs and Progress tabs show about a finished run: the held-back examples before and after,
the diagnosis with its "Try this" (which ui/train_fill.py turns into the Train tab's fields), early stopping, and the
blind A/B win-rates.

Rendering is plain functions of the run record (Markdown or table rows); the handlers are `handler(ctx, values)`."""
import time

import gradio as gr

from backend.labels.winrate import win_rates
from backend.evaluation.behaviour import named
from backend.evaluation.report_card import learned_verdict
from backend.runs import DONE, ENDED, STOPPED, has_adapter
from backend.words import plural
from ui.common import Context, esc, probe_markdown

HELDOUT_HEADERS = ["Question", "Reference answer", "Before (base)", "Score before", "After (tuned)", "Score after"]


def _cell(text, limit: int = 300) -> str:
    text = str(text or "").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def heldout_rows(heldout: dict | None) -> list[list]:
    """One row per held-back example, then the means."""
    if not heldout or not heldout.get("examples"):
        return []
    rows = [[_cell(e["prompt"]), _cell(e["reference"]), _cell(e["base"]), e["base_score"], _cell(e["tuned"]),
             e["tuned_score"]] for e in heldout["examples"]]
    rows.append(["Mean", "", "", heldout["base_mean"], "", heldout["tuned_mean"]])
    return rows


REWORDED_HEADERS = ["Asked in other words", "The tuned model's answer", "Right?"]


def reworded_rows(heldout: dict | None) -> list[list]:
    """One row per question the tuned model was asked about itself in other words (backend/evaluation/reworded.py),
    with why a wrong answer is wrong, wrong ones first: the card's verdict quotes one of them, the table shows them
    all."""
    check = ((heldout or {}).get("behaviour") or {}).get("reworded") or {}
    rows = []
    for row in check.get("answers") or []:  # records of the check's first day lack carried and mixed_up
        missing = [t for t, carried in (row.get("carried") or {}).items() if not carried]
        why = ("yes" if row["right"] else "no: puts one in the other's place" if row.get("mixed_up") else
               "no: it gave no answer" if not (row["answer"] or "").strip() else
               "no: without " + " or ".join(f"“{t}”" for t in missing))
        rows.append([_cell(row["question"]), _cell(row["answer"]), why])
    return sorted(rows, key=lambda row: row[2] == "yes")  # the wrong answers first: they are what a person reads for


def heldout_markdown(heldout: dict | None, verdict: dict | None = None) -> str:
    """`verdict`: backend.evaluation.report_card.learned_verdict of the run, the sentence the CLI and the model card say too."""
    if not heldout:
        return ("**Did it learn?** No held-back examples to check: this run held none back (set a share held back "
                "in the Train tab's Advanced settings).")
    if not heldout.get("count"):
        return "**Did it learn?** The held-back examples have no reference answer to compare with."
    behaviour = heldout.get("behaviour")
    lead = ""
    if behaviour and verdict and verdict["learned"] is not None:
        found = ", ".join(esc(named(p)) for p in behaviour["signature"])
        lead = (f"**Did it learn?** {esc(verdict['words'])} What the examples teach, found in their answers and not in "
                f"the base model's: {found}.\n\n")
    change = heldout["tuned_mean"] - heldout["base_mean"]
    verdict = ("closer to your reference answers than the base model" if change > 1 else
               "further from your reference answers than the base model" if change < -1 else
               "about as close to your reference answers as the base model")
    opening = ("Word for word, on the same examples" if lead else
               f"**Did it learn?** On {plural(heldout['count'], 'example')} it never trained on")
    return lead + (f"{opening}, the tuned model answers {verdict}: mean {heldout['metric']} {heldout['base_mean']} "
                   f"before, {heldout['tuned_mean']} after (0 to 100; higher is closer). Better on "
                   f"{heldout['tuned_better']}, worse on {heldout['tuned_worse']}.")


def stopped_heldout_markdown(run: dict) -> str:
    """A stopped run was never compared on its held-back examples: that comparison is made when a run ends."""
    if not has_adapter(run["id"]):
        return "**Did it learn?** It never trained: it was stopped before it began, so there is nothing to check."
    return ("**Did it learn?** Not checked: the held-back examples are compared when a run ends, and this one was "
            "stopped first. Resume it to see.")


def diagnosis_markdown(run: dict) -> str:
    """The findings in plain words, or why there are none."""
    diagnosis = run.get("diagnosis")
    stopping = (run.get("outcome") or {}).get("early_stopping")
    lines = []
    if diagnosis is None:
        if run["status"] == STOPPED:
            lines.append("**Diagnosis:** none: the run was stopped before its end. Resume it to see one.")
    elif not diagnosis:
        lines.append("**Diagnosis:** nothing looks wrong in the curves or the everyday answers.")
    else:
        lines.append("**Diagnosis**")
        for finding in diagnosis:
            lines.append(f"- **{esc(finding['title'])}.** {esc(finding['detail'])}  \n  **Next:** "
                         f"{esc(finding['next_step'])}")
    if stopping:
        lines.append(f"**Early stopping:** {esc(stopping['note'])}")
    return "\n\n".join(lines)


def suggestion(run: dict) -> dict | None:
    """The first finding's settings to try, as the Train tab takes them: the run's settings with the change."""
    for finding in run.get("diagnosis") or []:
        if finding["try_settings"]:
            config = dict(run["config"])
            config.update(finding["try_settings"])
            config["name"] = f"{run['name']} (tried: {finding['code'].replace('_', ' ')})"
            return {"run": run["id"], "title": finding["title"], "change": finding["try_settings"], "config": config}
    return None


def try_button(run: dict):
    hint = suggestion(run)
    if hint is None:
        return gr.update(visible=False)
    change = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in hint["change"].items())
    return gr.update(visible=True, value=f"Try this: train again with {change}")


def try_this(ctx: Context, v: dict) -> dict:
    """Runs tab → Train tab, by name: the suggestion (the run's settings with the diagnosis' change), the tabs."""
    if not v["run"]:
        raise gr.Error("Pick a run first.")
    hint = suggestion(ctx.runs().get(v["run"]))
    if hint is None:
        raise gr.Error("The diagnosis of this run suggests no change of settings.")
    hint["asked"] = time.time()  # a second click fills the form again
    return {"suggestion": hint, "tabs": gr.Tabs(selected="train")}


def winrate_markdown(report: dict, names: dict | None = None) -> str:
    """Every pair judged in blind A/B votes: win-rate with ties, 95% interval, votes; the ranking; and the choices
    left out for not being blind, in the words `labels stats` prints."""
    names = names or {}
    left_out = f"\n\n{esc(report['left_out'])}" if report.get("left_out") else ""

    def name(model: str) -> str:
        if model.startswith("base:"):
            return f"base model ({model[5:]})"
        return names.get(model, model)

    if not report["pairs"]:
        return ("**Do people prefer it?** No blind A/B votes yet. Compare two models blind in the **6. Chat** tab "
                "(tick Blind A/B) or in A/B mode in the **7. Label** tab; the win-rates appear here." + left_out)
    lines = ["**Do people prefer it? Blind A/B votes** (a tie counts as half a win; 95% Wilson interval)", "",
             "| Model | against | votes | wins | ties | losses | win-rate | 95% interval |",
             "|---|---|---|---|---|---|---|---|"]
    for p in report["pairs"]:  # seen from side b: a run, when the other side is a base model
        low, high = 1 - p["interval"][1], 1 - p["interval"][0]
        lines.append(f"| {esc(name(p['b']))} | {esc(name(p['a']))} | {p['votes']} | {p['b_wins']} | {p['ties']} | "
                     f"{p['a_wins']} | {1 - p['a_win_rate']:.0%} | {low:.0%} to {high:.0%} |")
    if report["ranking"]:
        lines += ["", "**Ranking of all models judged** (Bradley–Terry fit; chance to beat an average model):", ""]
        lines += [f"{r['rank']}. {esc(name(r['model']))}: {r['beats_average']:.0%}" for r in report["ranking"]]
    elif report["ranking_note"] and len(report["models"]) >= 3:
        lines += ["", esc(report["ranking_note"])]
    return "\n".join(lines) + left_out


def winrates_for_runs(ctx: Context) -> str:
    names = {r["id"]: r["name"] for r in ctx.runs().list()}
    return winrate_markdown(win_rates(ctx.db()), names)


def run_checks(ctx: Context, v: dict) -> dict:
    """The Runs tab's "did it work?" panel for the chosen run, by name: learned, heldout (the table), reworded (the
    questions about itself asked in other words, where they were), diagnosis, try_it (the Try this button) and
    preferred."""
    preferred = winrates_for_runs(ctx)
    if not v["run"]:
        return {"learned": "", "heldout": gr.update(value=None, visible=False),
                "reworded": gr.update(value=None, visible=False), "diagnosis": "",
                "try_it": gr.update(visible=False), "preferred": preferred}
    run = ctx.runs().get(v["run"])
    rows = heldout_rows(run.get("heldout"))
    asked = reworded_rows(run.get("heldout")) if run["status"] == DONE else []
    learned = (heldout_markdown(run.get("heldout"), learned_verdict(run)) if run["status"] == DONE else
               stopped_heldout_markdown(run) if run["status"] == STOPPED else "")
    return {"learned": learned, "heldout": gr.update(value=rows or None, visible=bool(rows)),
            "reworded": gr.update(value=asked or None, visible=bool(asked)),
            "diagnosis": diagnosis_markdown(run), "try_it": try_button(run), "preferred": preferred}


def ended_markdown(run: dict) -> str:
    """What Progress shows under the curves once a run has ended: diagnosis, held-back check, everyday answers."""
    if run["status"] not in ENDED:
        return probe_markdown(run.get("probe"))
    heldout = heldout_markdown(run["heldout"], learned_verdict(run)) if run.get("heldout") else ""
    parts = [diagnosis_markdown(run), heldout,
             probe_markdown(run.get("probe"))]
    return "\n\n".join(p for p in parts if p)
