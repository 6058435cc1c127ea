"""Text caps and the answer time limit: a 20 MB chat message sent to the app's API is refused in words before
the chat handler runs, and an answer that would run on is cut off at the pool's time limit."""
import gradio as gr
import pytest

from backend.answers import Sampling
from backend.models.pool import ModelPool
from tests.fake_runs import fake_run
from ui import chat_tab
from ui.common import bind


def test_a_20_mb_chat_message_is_refused_in_words_before_the_handler_runs():
    callback, _ = bind(None, chat_tab.respond, {"message": "message box"})  # as the page and the API call it
    with pytest.raises(gr.Error, match=r"The message is 20,000,000 characters long; the limit is 8,000"):
        next(iter(callback({"message box": "x" * 20_000_000})))  # ctx None: the handler itself never ran


def test_an_answer_is_cut_off_at_the_time_limit(tiny_model):
    pool = ModelPool(max_seconds=0.5)
    source = pool.source(fake_run(tiny_model))
    hello = [{"role": "user", "content": "Tell me a long story."}]
    [answer] = pool.answer([(source, hello)], Sampling(temperature=0, max_new_tokens=1024))
    assert not answer.ended  # cut off, not finished
    from backend.models.loading import load_tokenizer
    tokens = len(load_tokenizer(tiny_model).encode(answer.text, add_special_tokens=False))
    assert 0 < tokens < 1024  # the tiny model never stops by itself: only the time limit ended it
