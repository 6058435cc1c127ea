"""Benchmark: fifty answers of the real embedded model judged in the browser, as a person would.

A script reads each answer for two seconds, then presses G or B (as tests/browser/test_loop_speed.py does on a
tiny model); answers are generated ahead, so the person should rarely wait. Printed: the time to the first
answer, the whole session, and the wait after each key (median, longest, how many over 1 s).
Needs Debian's Chromium (make browser). Run: .venv/bin/python benchmarks/label_speed.py [--reading 2.0]
(a temporary workspace; the model cache is TUNELOOP_MODEL_CACHE's or the default)."""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reading", type=float, default=2.0, help="Seconds the person reads each answer.")
    settings = parser.parse_args()
    os.environ["TUNELOOP_HOME"] = tempfile.mkdtemp(prefix="label-speed-")
    from playwright.sync_api import sync_playwright

    from backend.models.loading import resolve_model
    from tests.browser.conftest import CHROMIUM, VIEWPORT
    from tests.browser.loop_helpers import ServedApp, count_text, open_tab, start_labelling, wait_for
    from tests.browser.test_loop_speed import PROMPTS

    resolve_model(None)  # the built-in model converted before the clock starts
    served = ServedApp()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(300_000)
            page.goto(served.url)
            open_tab(page, "7. Label")
            started = time.time()
            start_labelling(page, PROMPTS)
            first = time.time() - started
            waits = []
            for n in range(1, len(PROMPTS) + 1):
                time.sleep(settings.reading)
                pressed = time.time()
                page.keyboard.press("g" if n % 3 else "b")
                wait_for(lambda: f"{n} judged" in count_text(page), 300, f"judgement {n} did not register")
                waits.append(time.time() - pressed)
            total = time.time() - started
            counted = count_text(page)
            browser.close()
    finally:
        served.close()
    print(f"{len(PROMPTS)} judgements ({counted.splitlines()[0] if counted else '?'}), reading {settings.reading} s "
          f"each: {total:.0f} s in all, first answer after {first:.0f} s; wait after a key: median "
          f"{statistics.median(waits):.2f} s, longest {max(waits):.1f} s, {sum(w > 1 for w in waits)} waits over 1 s; "
          f"load {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
