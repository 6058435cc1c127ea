"""The web app: build_app() puts the tabs together; launch() serves it with safe defaults.

Safe defaults: localhost only unless a host is given, and then only with a password; host, origin and sign-in
checks and a cap on every request body (ui/exposure.py) before Gradio sees a request; an upload size limit, uploads
kept in the workspace (GRADIO_TEMP_DIR), files served only from the workspace's exports folder, no flagging, no
analytics, no fonts fetched from the internet.

Two pages: the owner's (every tab) and a labeller's at /label (Chat and Label only). With a password, the owner
signs in with it and labellers with theirs (backend/accounts.py); RoleGuard keeps a labeller to their page.
"""
import atexit
import os
import signal
import sys
import threading
import time

import gradio as gr
from gradio import http_server
from anyio import to_thread
from gradio.exceptions import ServerFailedToStartError
from starlette.middleware import Middleware

from backend import limits, workspace
from backend.accounts import AccountStore, SignIn
from backend.data import sandbox
from backend.limits import max_upload_bytes
from backend.models.pool import ModelPool
from ui import banner, label_tab, live_tab, preview, train_tab
from ui.chat_tab import create_chat_tab
from ui.common import Context
from ui.data_tab import create_data_tab
from ui.export_tab import create_export_tab
from ui.exposure import (LABELLER_PAGE, BodyCap, HostOriginGuard, LoginLimiter, LoginThrottle, RoleGuard,
                         allowed_host_names, check_exposure, extra_host_names, is_local, parse_auth, read_auth,
                         trusted_proxies)  # noqa: F401 (is_local)
from ui.label_tab import create_label_tab
from ui.live_tab import create_live_tab
from ui.runs_tab import create_runs_tab
from ui.team import create_team_tab
from ui.train_tab import create_train_tab
from ui.uploads import remove_stray_files

INTRO = ("# Tuneloop\nTeach a language model new behaviour from your own examples, on this computer. "
         "Go through the tabs in order: **1. Data** (your examples) → **2. Train** → **3. Progress** → "
         "**4. Runs** (history) → **5. Export** (download the model). Then close the loop: **6. Chat** with "
         "base and tuned side by side, **7. Label** answers with thumbs or A/B choices, and train on your labels. "
         "**8. Team**: add labellers, and see how far they agree.")
LABELLER_INTRO = ("# Tuneloop: labelling\nJudge the model's answers: **Label** gives you answers one after another "
                  "(thumbs or A/B), **Chat** lets you ask your own questions. Every judgement is saved at once, "
                  "under your name. [Sign out](/logout)")
CSS = """
.gradio-container { max-width: 1280px !important; }
footer { display: none !important; }
.nav-holder { display: none !important; }  /* no page links: the owner's and a labeller's page each stand alone
                                             (gr.Navbar(visible=False) leaves it shown in Gradio 6.31) */
/* A table's headings keep their words whole: the everyday answers' last heading read 'Still righ / t' beside two
   columns of long answers (Gradio's text may break anywhere in a word). */
.gradio-container .prose th { overflow-wrap: normal; word-break: normal; }
/* A Stop or Delete button with nothing to act on is grey like any disabled button: Gradio only halves its opacity,
   and a pale red still read as a warning on a page where nothing ran (issue 26, item 18). */
.gradio-container button.stop:disabled { background: var(--button-secondary-background-fill) !important;
  border-color: var(--button-secondary-border-color) !important; color: var(--button-secondary-text-color) !important; }
""" + preview.CSS + train_tab.CSS + live_tab.CSS + label_tab.CSS + banner.CSS

# Gradio's status line for screen readers says `common.complete` as each event ends: its English words lack that key
# (gradio 6.31), and the key itself was read out. Given here, it serves every language (English is the fallback).
STATUS_WORDS = gr.I18n(en={"common.complete": "Done"})


# A button far down one tab that opens another (Start, 'Train DPO anyway', Follow, Try this) left the page scrolled as
# far down as it was: the new tab showed its middle, with the line naming the run out of sight above. A tab that
# opens below the top of the window brings the tab bar back into view; a tab clicked in the bar is in view already.
SHOW_TAB_BAR = """() => { const bar = document.querySelector('[role=tablist]');
    if (bar && bar.getBoundingClientRect().top < 0) bar.scrollIntoView(); }"""


def use_workspace_for_uploads():
    """Gradio keeps uploads and served copies in GRADIO_TEMP_DIR: inside the workspace, not /tmp. Temporary files
    that earlier uploads left there are removed (ui/uploads.py)."""
    os.environ["GRADIO_TEMP_DIR"] = str(workspace.uploads_dir())
    remove_stray_files(workspace.uploads_dir())
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


# Uploads and the copies Gradio serves are deleted every hour once a day old (all of them when the app stops); a
# saved dataset lives in the database, and removing it removes its upload at once (DatasetStore.delete).
DELETE_CACHE = (3600, 86400)
SHUTDOWN_GRACE_S = 2  # on stop, requests still running get this long to finish; then their streams are cut


def build_app(runner=None) -> gr.Blocks:
    """The app's page. Its runner starts when the app is served (launch), not before: an app that cannot get its
    port must not train anything."""
    use_workspace_for_uploads()
    if runner is None:
        from backend.jobs.runner import JobRunner
        runner = JobRunner(standby=True)  # a worker loads the training libraries before Start is clicked
    sandbox.warm_up()  # the inspection fork server loads the tokenizer while the page is built
    ctx = Context(runner, ModelPool())  # one base model in memory serves both chat panes and the label queue
    with gr.Blocks(title="Tuneloop", analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(INTRO)
        watch = gr.State(None)  # a run to show in the Progress tab, set by Start, Rerun and Follow
        suggestion = gr.State(None)  # settings a run's diagnosis suggests, set by "Try this" in Runs for Train
        wire_banner = banner.create_banner(ctx, demo, watch)
        with gr.Tabs(elem_id="tl-tabs") as tabs:
            create_data_tab(ctx, demo)
            create_train_tab(ctx, demo, tabs, watch, suggestion)
            progress_run = create_live_tab(ctx, demo, watch)
            create_runs_tab(ctx, demo, tabs, watch, suggestion)
            create_export_tab(ctx, demo)
            create_chat_tab(ctx, demo)
            create_label_tab(ctx, demo, tabs, watch)
            create_team_tab(ctx, demo)
        # First: a listener's script runs when its turn comes, and the line's redraw below waits on the server.
        tabs.change(None, js=SHOW_TAB_BAR)
        wire_banner(tabs, progress_run)
    with demo.route("Labelling", LABELLER_PAGE, show_in_navbar=False):  # a labeller's page: Chat and Label only
        gr.Markdown(LABELLER_INTRO)
        with gr.Tabs():
            create_label_tab(ctx, demo, None, None, labeller_view=True)
            create_chat_tab(ctx, demo, labeller_view=True)
    demo.tuneloop_runner = runner
    demo.tuneloop_ctx = ctx
    return demo


class PatientServer(http_server.Server):
    """Gradio's server, but waiting for uvicorn to start as long as it takes: Gradio gives it 5 s, then calls the port
    taken, and a busy machine can take longer. A port really taken, or a failed start, ends uvicorn's thread."""

    def run_in_thread(self):
        if self.reloader:
            return super().run_in_thread()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        while not self.started:
            if not self.thread.is_alive():
                raise ServerFailedToStartError("Server failed to start. Please check that the port is available.")
            time.sleep(0.01)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False, insecure_no_auth: bool = False):
    credentials = parse_auth(auth)
    if not insecure_no_auth:  # serve() has warned about the insecure case already
        check_exposure(host, auth)
    os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxies()  # read by uvicorn's Config, made inside demo.launch
    limiter = demo.tuneloop_login_limiter = LoginLimiter()
    ctx = demo.tuneloop_ctx
    sign_in = demo.tuneloop_sign_in = SignIn(credentials, lambda: AccountStore(ctx.db()))
    guards = [Middleware(HostOriginGuard, host_names=allowed_host_names(host), origin_names=extra_host_names()),
              Middleware(BodyCap, request_bytes=int(limits.current().max_request_mb * 2**20),
                         upload_bytes=max_upload_bytes()),
              Middleware(LoginThrottle, limiter=limiter),
              Middleware(RoleGuard, sign_in=sign_in)]

    async def check_password(name: str, password: str) -> bool:
        """The owner's password or a labeller's: an Argon2 check takes a while, so not on the server's loop."""
        return await to_thread.run_sync(sign_in.check, name, password)
    http_server.Server = PatientServer  # the class Gradio's start_server makes its server from
    font = ["ui-sans-serif", "system-ui", "sans-serif"]
    served = demo.launch(
        server_name=host, server_port=port, auth=check_password if credentials else None,
        prevent_thread_lock=True, quiet=quiet,
        max_file_size=max_upload_bytes(), allowed_paths=[str(workspace.exports_dir())], show_error=False,
        ssr_mode=False, mcp_server=False, run_history=False, footer_links=[], css=CSS, i18n=STATUS_WORDS,
        app_kwargs={"middleware": guards},
        _frontend=False,  # skips Gradio's self-check (one request, 3 s timeout): on a busy machine it ended the app
        theme=gr.themes.Default(font=font, font_mono=["ui-monospace", "monospace"]),
        auth_message="Tuneloop: sign in with the user and password given to the app." if credentials else None,
    )
    # An open page holds its heartbeat stream open: uvicorn would wait for it for ever before the shutdown that
    # removes this session's uploads, and Gradio gives up on the server after 5 s.
    demo.server.config.timeout_graceful_shutdown = SHUTDOWN_GRACE_S
    demo.tuneloop_runner.start()  # the port is ours: train runs left waiting by an earlier session
    if not prevent_thread_lock:
        serve_until_stopped(demo)
        demo.server.thread.join(timeout=60)  # the shutdown itself: open streams cut after the grace, uploads removed
    return served


def serve_until_stopped(demo: gr.Blocks):
    """Gradio's block_thread, but a SIGTERM is a flag read here, not an exception: raised in the main thread, it
    broke out of whatever ran there, and one that came after the port answered but before the wait began (while the
    runner started, on a busy machine) ended the app with 'Interrupted.' and exit code 130 instead of a clean stop."""
    try:
        while demo.is_running and not STOP_ASKED.wait(0.1):
            pass
    except KeyboardInterrupt:  # Ctrl-C
        pass
    print("Closing the web app...", file=sys.stderr)
    demo.server.close()


def serve(host: str = "127.0.0.1", port: int = 7860, auth: str | None = None, auth_file: str | None = None,
          insecure_no_auth: bool = False) -> int:
    """`python app.py`: serve until Ctrl-C, then let a training run save and stop."""
    auth = read_auth(auth, auth_file)  # a malformed or missing password stops here, before anything starts
    check_exposure(host, auth, insecure_no_auth)
    trusted_proxies()  # a malformed list stops here too
    signal.signal(signal.SIGTERM, _ask_to_stop)  # `docker stop`, `kill`: shut down as on Ctrl-C
    demo = build_app()
    threading.Thread(target=_prepare_rehearsal, name="tuneloop-rehearsal", daemon=True).start()
    print(f"Tuneloop is starting at http://{host}:{port} (workspace: {workspace.home()})", file=sys.stderr)
    try:
        launch(demo, host, port, auth, insecure_no_auth=insecure_no_auth)
    except OSError as exc:
        print(f"Error: cannot listen on {host}:{port} ({str(exc).split('.')[0]}). Is Tuneloop already running? "
              "Choose another port with --port.", file=sys.stderr)
        return 1
    finally:
        runner = demo.tuneloop_runner
        if runner.current:
            print("Asking the training run to save and stop...", file=sys.stderr)
        runner.close(stop_current=True)
    return 0


def end_process(code: int):
    """End the process once the web app has stopped: run the exit handlers (logging, multiprocessing's children),
    flush, and leave without the interpreter's teardown. Its full garbage collections over the millions of objects
    that torch, transformers and Gradio hold made the app take up to 45 s to exit after SIGTERM, and with a model
    busy in a thread it could abort instead ("terminate called without an active exception")."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _prepare_rehearsal():
    """The built-in model's everyday answers for the rehearsal, made while the user picks data, so that the first run
    does not wait for them (a run makes them itself before step 1 when they are missing: this is only a head start)."""
    from backend.evaluation.rehearsal import prepare_rehearsal
    try:
        prepare_rehearsal()
    except Exception as exc:  # a head start only: the first run makes them if this could not
        print(f"Could not prepare the rehearsal's everyday answers ahead ({exc}); the first run will make them.",
              file=sys.stderr)


STOP_ASKED = threading.Event()  # set by SIGTERM; read once the app serves (serve_until_stopped)


def _ask_to_stop(signum, frame):
    STOP_ASKED.set()
