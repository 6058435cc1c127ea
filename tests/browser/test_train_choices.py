"""What the Train tab says and fills in, as a newcomer meets it in headless Chromium (issue 26):
item 2, the preset cards' time follows the chosen model (they said "about 6 min" for Llama 3.1 8B as for the 135M
built-in model); item 4, "Try this" on a DPO run trained on labels fills DPO, the labels' dataset and the run it
built on (it filled SFT on another dataset with no run, and Start failed); item 7, a learning rate far too high is
named as such, in Runs and Progress, and "Try this" lowers it (it was called memorised, with "max_steps 2")."""
import json
import re

import pytest

from backend.models.catalogue import catalogue
from tests.browser.loop_helpers import open_tab, wait_for
from tests.browser.test_browser_flow import choose
from tests.fake_runs import fake_run
from ui.train_tab import SOURCES, entry_label

pytestmark = pytest.mark.browser
QWEN, LLAMA = "Qwen/Qwen2.5-0.5B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"
QUICK_CARD = r"about (\d+) min for 'chats' here \((?:at most )?(\d+) steps"


@pytest.fixture
def offline(monkeypatch):
    from tests.hub_standin import closed_port
    monkeypatch.setenv("HF_ENDPOINT", closed_port())


def save_dataset(path, name: str):
    from backend.data import DatasetStore, inspect_file
    from backend.db import connect
    DatasetStore(connect()).add(inspect_file(path), name=name)


def quick_card(page) -> str:
    return page.locator(".tl-card").first.inner_text()


def minutes(page) -> int:
    return int(re.search(QUICK_CARD, quick_card(page))[1])


def pick_hub_model(page, model_id: str):
    entry = next(e for e in catalogue() if e.id == model_id)
    choose(page, "Model from the Hugging Face Hub", entry_label(entry))


def test_the_preset_cards_time_follows_the_chosen_model(offline, app, page, chat_file):
    url, _ = app
    save_dataset(chat_file, "chats")
    page.goto(url)
    open_tab(page, "2. Train")
    wait_for(lambda: re.search(QUICK_CARD, quick_card(page)), 120, "the cards give no time for the saved dataset")
    builtin = minutes(page)
    assert "worked out from this model's size" not in quick_card(page)  # the built-in model's own typical speed

    page.get_by_label("A model from the Hugging Face Hub (downloaded once)").check()
    pick_hub_model(page, QWEN)
    wait_for(lambda: "worked out from this model's size" in quick_card(page), 120,
             f"the cards did not follow Qwen2.5 0.5B: {quick_card(page)}")
    qwen = minutes(page)
    pick_hub_model(page, LLAMA)
    wait_for(lambda: minutes(page) > qwen, 120, f"the cards did not follow Llama 3.1 8B: {quick_card(page)}")
    assert qwen > builtin, (qwen, builtin)

    box = page.get_by_role("combobox", name="Model from the Hugging Face Hub", exact=True)
    box.fill("someone/not-in-the-catalogue")  # any hub id may be typed; its size is known once it is downloaded
    box.press("Enter")
    wait_for(lambda: "unknown until the first steps" in quick_card(page), 120,
             f"a model of unknown size still got a figure: {quick_card(page)}")

    page.get_by_label(SOURCES[0][0], exact=True).check()
    wait_for(lambda: re.search(QUICK_CARD, quick_card(page)) and minutes(page) == builtin, 120,
             f"back on the built-in model, the cards did not come back: {quick_card(page)}")


def test_examples_about_the_assistant_fill_the_presets_step_for_them_and_a_typed_one_stays(app, page, chat_file):
    """Issue 24: the quick preset trains examples that teach who the assistant is at 1e-3 (5e-4 otherwise). The form
    shows the step `train` would take for the dataset picked, the cards say why, and a rate typed in stays."""
    from pathlib import Path
    url, _ = app
    save_dataset(chat_file, "chats")
    save_dataset(Path(__file__).parents[1] / "fixtures" / "identity_quill.jsonl", "quill")
    page.goto(url)
    open_tab(page, "2. Train")
    page.get_by_text("Advanced settings").click()
    rate = page.get_by_role("spinbutton", name="Learning rate (size of each step)")
    from tests.conftest import CHAT_ROWS
    LISTED = {"quill": "quill (SFT, 40 examples)", "chats": f"chats (SFT, {len(CHAT_ROWS)} examples)"}
    said = "so the preset trains them with learning rate 0.001 instead of 0.0005"
    wait_for(lambda: re.search(r"for '(chats|quill)' here", quick_card(page)), 120, "the cards name no dataset")
    for dataset, value, note in (("quill", "0.001", True), ("chats", "0.0005", False), ("quill", "0.001", True)):
        choose(page, "Dataset", LISTED[dataset])
        wait_for(lambda: f"for '{dataset}' here" in quick_card(page) and float(rate.input_value()) == float(value)
                 and (said in quick_card(page)) == note, 120,
                 f"'{dataset}': learning rate {rate.input_value()}, card {quick_card(page)!r}")
    rate.fill("0.0002")
    rate.press("Tab")
    choose(page, "Dataset", LISTED["chats"])
    wait_for(lambda: "for 'chats' here" in quick_card(page), 120, "the cards did not follow the dataset")
    choose(page, "Dataset", LISTED["quill"])
    wait_for(lambda: said in quick_card(page), 120, "the cards did not follow the dataset")
    assert float(rate.input_value()) == 0.0002  # typed: it stays
    rate.fill("0.001")  # typed, and the preset's own value for this data: it stays on data that would get 0.0005
    rate.press("Tab")
    choose(page, "Dataset", LISTED["chats"])
    wait_for(lambda: "for 'chats' here" in quick_card(page), 120, "the cards did not follow the dataset")
    assert float(rate.input_value()) == 0.001
    from tests.browser.conftest import ARTIFACTS
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".tl-cards").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "train-about-itself.png"), full_page=False)


def test_try_this_on_a_dpo_run_on_labels_fills_dpo_its_labels_and_the_run_it_built_on(app, page, tiny_model,
                                                                                       chat_file, pairs_file):
    from backend.db import connect
    from backend.runs import RunStore
    url, _ = app
    save_dataset(chat_file, "identity_quill")
    sft = fake_run(tiny_model, name="identity_quill, quick")
    page.goto(url)
    open_tab(page, "2. Train")  # the tab lists its choices before the labels' dataset and run exist
    dataset = page.get_by_role("combobox", name="Dataset", exact=True)
    wait_for(lambda: dataset.input_value().startswith("identity_quill"), 60, "the saved dataset is not offered")

    save_dataset(pairs_file, "labels-dpo-1")  # as training on the Label tab's A/B choices makes them
    dpo = fake_run(tiny_model, seed=1, method="dpo", base_run=sft, name="labels dpo")
    store = RunStore(connect())
    store.update(dpo, dataset="labels-dpo-1", config={**store.get(dpo)["config"], "dataset": "labels-dpo-1"},
                 diagnosis=[{"code": "too_few_examples", "title": "Too few examples for these settings",
                             "detail": "8 pairs made 3 updates.", "next_step": "Label more pairs, or lower the rate.",
                             "try_settings": {"learning_rate": 0.0001}}])

    open_tab(page, "4. Runs")
    run = page.get_by_role("combobox", name="Run", exact=True)
    run.click()  # the run picked when the page opened stays picked: the labels' run came after
    page.locator(f"#{run.get_attribute('aria-controls')}").get_by_role("option").filter(has_text="labels dpo").click()
    wait_for(lambda: run.input_value().startswith("labels dpo"), 60, "the DPO run is not picked")
    page.locator("#tl-runs-try").get_by_text("Try this: train again with learning_rate 0.0001").click()

    page.get_by_role("tab", name="2. Train", selected=True).wait_for()
    base_run = page.get_by_role("combobox", name="Finished run to build on", exact=True)

    def filled() -> dict:
        return {"dataset": dataset.input_value().split(" (")[0], "dpo": page.get_by_label("DPO: prefer the better answer").is_checked(),
                "from a run": page.get_by_label("A finished run: keep building on it").is_checked(),
                "base run": base_run.input_value() if base_run.is_visible() else None}
    wanted = {"dataset": "labels-dpo-1", "dpo": True, "from a run": True}
    wait_for(lambda: {**filled(), "base run": None} == {**wanted, "base run": None}
             and (filled()["base run"] or "").startswith("identity_quill, quick"), 120,
             f"Try this did not fill DPO on the labels and the run they judged: {filled()}")
    # The line under Start says where the settings came from, and the preset cards time the data filled in.
    page.get_by_text("Filled in from run").wait_for()
    cards = page.locator(".tl-cards")
    wait_for(lambda: "'labels-dpo-1'" in cards.inner_text(), 120, f"the cards time other data: {cards.inner_text()}")
    page.get_by_role("button", name=re.compile("^Advanced settings")).click()
    rate = page.get_by_role("spinbutton", name="Learning rate (size of each step)")
    wait_for(lambda: float(rate.input_value()) == 0.0001, 60, f"the rate was not changed: {rate.input_value()}")
    # The tab's own refresh, answering after the fill, leaves it as filled (it set its old choices again).
    open_tab(page, "4. Runs")
    open_tab(page, "2. Train")
    page.locator("#tl-memory").get_by_text(re.compile("Memory: ")).wait_for()
    assert {**filled(), "base run": None} == {**wanted, "base run": None}, filled()
    assert page.get_by_text("Filled in from run").is_visible()  # the tab's select event left the line alone
    assert filled()["base run"].startswith("identity_quill, quick"), filled()


def test_a_learning_rate_far_too_high_is_named_and_try_this_lowers_it(app, page, tiny_model):
    """The walk's run: learning rate 0.01 (20x the quick preset's) for 8 steps; the held-back loss went 1.68 -> 2.20
    -> 1.73. The diagnosis is made as the worker makes it when a run ends (backend/evaluation/diagnosis.diagnose)."""
    from backend.db import connect
    from backend.evaluation.diagnosis import diagnose
    from backend.runs import RunStore
    url, _ = app
    run_id = fake_run(tiny_model, name="too hot", learning_rate=0.01, max_steps=8, validation_split=0.1, patience=2)
    store = RunStore(connect())
    losses = [2.1, 1.7, 1.5, 1.4, 1.3, 1.1, 0.9, 0.8]
    for step, loss in enumerate(losses, start=1):
        store.add_metrics(run_id, step, {"train_loss": loss, "grad_norm": 1.0, "epoch": step / 4,
                                         "learning_rate": 0.01})
    for step, loss in zip((2, 5, 8), (1.68, 2.20, 1.73)):
        store.add_metrics(run_id, step, {"eval_loss": loss, "epoch": step / 4})
    stopping = {"fired": True, "best_step": 2, "stopped_at_step": 8, "patience": 2,
                "note": "stopped at step 8; kept step 2."}
    run = store.get(run_id)
    findings = diagnose(store.metrics(run_id), None, run["config"], 80, early_stopping=stopping)
    store.update(run_id, diagnosis=findings, outcome={"train_examples": 80, "heldout_examples": 8,
                                                      "everyday_mixed": 0, "early_stopping": stopping})

    page.goto(url)
    open_tab(page, "4. Runs")
    diagnosis = page.locator("#tl-runs-diagnosis")
    diagnosis.get_by_text("the learning rate looks too high").wait_for()
    words = diagnosis.inner_text()
    assert "a learning rate of 0.01" in words and "memorised" not in words, words
    button = page.locator("#tl-runs-try")
    assert button.inner_text() == "Try this: train again with learning_rate 0.001", button.inner_text()
    assert "(the top of the usual range; half of this run's, 0.005, is above it)" in words, words

    open_tab(page, "3. Progress")
    ended = page.locator("#tl-ended")
    wait_for(lambda: "the learning rate looks too high" in ended.inner_text(), 60,
             f"Progress does not name the learning rate: {ended.inner_text()}")
    assert "memorised" not in ended.inner_text()

    open_tab(page, "4. Runs")
    button.click()
    page.get_by_role("tab", name="2. Train", selected=True).wait_for()
    page.get_by_role("button", name=re.compile("^Advanced settings")).click()
    rate = page.get_by_role("spinbutton", name="Learning rate (size of each step)")
    wait_for(lambda: rate.input_value() and float(rate.input_value()) == 0.001, 60,
             f"Try this did not lower the learning rate: {rate.input_value()}")
    page.locator("#tl-memory").get_by_text(re.compile("Memory: ")).wait_for()
    assert "above the usual range" not in page.locator("#tl-fit-advice").inner_text()  # it said so of 0.005


JSON_ROWS = [{"messages": [{"role": "user", "content": question},
                           {"role": "assistant", "content": json.dumps({"answer": answer, "words": len(answer.split())})}]}
             for question, answer in (
                 ("Name a mammal that can fly.", "The bat."), ("Who painted the Mona Lisa?", "Leonardo da Vinci."),
                 ("Give me a rhyme for cat.", "Hat."), ("Which gas do plants take in?", "Carbon dioxide."),
                 ("How many legs does a spider have?", "Eight."), ("Suggest a title for a poem about rain.", "Grey."),
                 ("What is the boiling point of water?", "100 degrees Celsius."), ("Name a primary color.", "Red."),
                 ("Translate 'cat' into French.", "Chat."), ("What do bees make?", "Honey."))]


def test_the_cards_count_the_everyday_answers_made_in_the_examples_way_first(app, page, chat_file, tmp_path):
    """Examples that answer every kind of question as JSON have the everyday answers made again in that way before the
    first step (backend/evaluation/rehearsal.in_their_way, 27 to 42 s on the 2-core CPU): the cards count it and say
    so, for that dataset only."""
    from tests.conftest import CHAT_ROWS, write_jsonl
    url, _ = app
    save_dataset(chat_file, "chats")
    save_dataset(write_jsonl(tmp_path / "json.jsonl", JSON_ROWS), "json answers")
    page.goto(url)
    open_tab(page, "2. Train")
    said = "first to answer everyday questions in your examples' way"
    for name, listed, shown in (("json answers", f"json answers (SFT, {len(JSON_ROWS)} examples)", True),
                                ("chats", f"chats (SFT, {len(CHAT_ROWS)} examples)", False)):
        choose(page, "Dataset", listed)
        wait_for(lambda: f"for '{name}' here" in quick_card(page) and (said in quick_card(page)) == shown, 120,
                 f"'{name}': {quick_card(page)!r}")
    choose(page, "Dataset", f"json answers (SFT, {len(JSON_ROWS)} examples)")
    wait_for(lambda: said in quick_card(page), 120, f"the card does not say it: {quick_card(page)!r}")
    from tests.browser.conftest import ARTIFACTS
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".tl-cards").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "train-their-way.png"), full_page=False)
