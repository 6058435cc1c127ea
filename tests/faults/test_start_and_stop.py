"""The app starts whatever the load and stops promptly: Gradio's own check that it can reach itself (one HTTP request
with a 3 s timeout) failed at load 11 and ended the app with "When localhost is not accessible, a shareable link must
be created"; after SIGTERM the app took 20 to 45 s to exit."""
import gradio.networking
import requests

from tests.faults.test_exposure import serve_app  # noqa: F401 (the fixture)


def test_the_app_starts_and_serves_when_gradio_cannot_reach_it_in_time(serve_app, monkeypatch):  # noqa: F811
    monkeypatch.setattr(gradio.networking, "url_ok", lambda url: False)  # what a 3 s timeout returns
    _, url = serve_app()
    assert requests.get(f"{url}/config", timeout=30).status_code == 200
