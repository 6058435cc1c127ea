"""Train tab: a dataset, a method, what to start from (the built-in model, a Hugging Face model judged for this
machine before it downloads, a folder, a finished run), a preset, the Advanced settings, a memory check, Start."""
import math
from pathlib import Path

import gradio as gr

from backend.models.catalogue import catalogue, find
from backend.models.chat_template import family_name
from backend.config import BUILTIN_MODEL, METHOD_TABLE, build_config, default, unusual_settings
from backend.errors import ConfigError, ModelError, RunNotFound, TuneloopError
from backend.limits import text_cap
from backend.models import hub, loading
from backend.models.memory import gb
from backend.models.fit import (WHAT_CHANGES, NotDownloaded, change_words, check_start, hub_id, longest, mismatch,
                                  needs_download, offers, system_note, template_note)
from backend.presets import DEFAULT_PRESET, about_itself_note, about_itself_settings, list_presets
from backend.models.run_time import (Speed, estimate_seconds, measured_speeds, their_way_seconds,
                                     training_speed)
from ui.common import (ACTIVE, Context, bind, dataset_choices, dataset_rehearses_their_way,
                       dataset_teaches_about_itself, esc, finished_run_choices, on, waiting_text)
from ui.settings_form import advanced_declarations, create_settings_form, form_updates, form_values, label
from ui.train_fill import fill_train_form, refill_settings

SOURCES = [("The built-in model (SmolLM2, 135 million parameters: small and quick)", "builtin"),
           ("A model from the Hugging Face Hub (downloaded once)", "hub"),
           ("A model folder on this computer", "folder"), ("A finished run: keep building on it", "run")]
PICK_A_MODEL = '<div class="tl-memory">Pick a model from the list to see whether the run fits in memory.</div>'
USE_FIT_HOW = "Press 'Use these settings' under the memory box to apply them."


def method_markdown(method: str, dataset: dict | None) -> str:
    title, text = METHOD_TABLE[method].title, METHOD_TABLE[method].teaches
    problem = mismatch(method, dataset)
    return f"**{title}.** {text}" + (f"\n\n**This will not work:** {esc(problem)}" if problem else "")


def preset_cards(selected: str, method: str, dataset: dict | None, speed: Speed | None, about: bool = False) -> str:
    """The presets, each with how long it takes on the dataset here with the chosen model's speed (backend/models/run_time.py):
    a cap where early stopping may end it sooner, and no figure where the model's speed cannot be known yet; and
    where the examples teach who the assistant is (`about`), what the preset does for them."""
    cards = []
    for preset in list_presets():
        when = esc(preset["time_hint"])
        if dataset and speed and speed.tokens_per_second is None:
            when = ("unknown until the first steps: this model's size is known once it is downloaded, and Progress "
                    "gives the time left from its first steps")
        elif dataset and speed:
            values = form_values(preset["name"], method, about)
            config = build_config(dict(values, method=method))
            steps, seconds = estimate_seconds(config, dataset, speed.tokens_per_second)
            first = their_way_seconds(config, dataset, speed.tokens_per_second)
            minutes = max(1, math.ceil(seconds / 60))
            if values.get("patience") and values.get("validation_split"):  # a cap: early stopping ends it sooner
                when = (f"up to about {minutes} min for '{esc(dataset['name'])}' here (at most {steps} steps; it "
                        "stops sooner once the held-back examples show no more progress)")
            else:
                when = f"about {minutes} min for '{esc(dataset['name'])}' here ({steps} steps)"
            if first:
                when += (f", with about {max(10, round(first, -1)):.0f} s first to answer everyday questions in your "
                         "examples' way, so that it keeps them in that way")
            if speed.basis == "scaled":
                when += ("; worked out from this model's size and the speed measured here, and corrected in Progress "
                         "from the first steps")
        note = about_itself_note(preset["name"], build_config(dict(form_values(preset["name"], method, True),
                                                                   method=method)), True) if about and dataset else ""
        note = f'<div class="tl-card-time">{esc(note)}</div>' if note else ""
        chosen = " tl-card-chosen" if preset["name"] == selected else ""
        cards.append(f'<div class="tl-card{chosen}"><div class="tl-card-title">{esc(preset["title"])}</div>'
                     f'<div class="tl-card-text">{esc(preset["description"])}</div>'
                     f'<div class="tl-card-time">Time: {when}</div>{note}</div>')
    return '<div class="tl-cards">' + "".join(cards) + "</div>"


def memory_html(check) -> str:
    """The run as set: Fits, Tight or Too big, in the fit verdict's words (the advice under the box gives the verdict
    when it changes settings), how it is laid out and where the memory goes."""
    estimate = check.estimate
    icon = {"fits": "Fits", "tight": "Tight", "too_big": "Too big"}[estimate.verdict]
    rows = "".join(f"<tr><td>{esc(name)}</td><td>{gb(size)}</td></tr>" for name, size in estimate.parts())
    return (f'<div class="tl-memory tl-{estimate.verdict}"><b>Memory: {icon}.</b> {esc(check.as_set_words)}'
            f'<div class="tl-layout">{esc(estimate.layout())}</div><details><summary>Where the memory goes</summary><table>{rows}'
            f'<tr><td><b>Total</b></td><td><b>{gb(estimate.total)}</b></td></tr>'
            f'<tr><td>Free on this {estimate.where}</td><td>{gb(estimate.available)}</td></tr></table></details></div>')


def dataset_info(ctx: Context, name: str | None) -> dict | None:
    """A saved dataset's record, with whether its way of answering is rehearsed (what a run of it takes)."""
    if not name or not ctx.datasets().exists(name):
        return None
    return dict(ctx.datasets().get(name), rehearses_their_way=bool(dataset_rehearses_their_way(ctx, name)))


def following_the_data(v: dict, method: str, about: bool) -> tuple:
    """The settings a preset gives examples about the assistant values of their own (the learning rate), for the
    dataset now chosen: (whether the form now holds the values for such examples, an update per setting). `followed`:
    whether its values were filled for such examples; `typed`: whether the person typed one since the preset filled
    the form, or Try this filled in a run's. A value still at the preset's for the data the form followed goes over to
    this data's; a typed one stays."""
    keep = (about, *[gr.update() for _ in about_itself_settings()])
    if about == bool(v["followed"]) or v["typed"]:
        return keep
    was, now = form_values(v["preset"], method, not about), form_values(v["preset"], method, about)
    return (about, *[gr.update(value=now[name]) if _same(v[name], was[name]) else gr.update()
                     for name in about_itself_settings()])


def _same(shown, value) -> bool:
    """A number box's value against a setting's (0.0005 may come back as 0.00049999...)."""
    if isinstance(value, (int, float)) and isinstance(shown, (int, float)):
        return math.isclose(shown, value, rel_tol=1e-9)
    return shown == value


def chosen_model(ctx: Context, v: dict) -> tuple[str, str]:
    """(model, base run) that the "Start from" choice names; errors name the box to fix."""
    if v["source"] == "hub":
        if not (v["hub_model"] or "").strip():
            raise gr.Error("Pick a model from the Hugging Face Hub list, or type its id (owner/name).")
        return hub_id(v["hub_model"]), ""
    if v["source"] == "folder":
        path = (v["folder"] or "").strip()
        if not path or not Path(path).expanduser().is_dir():
            raise gr.Error(f"No model folder at '{path}'. Give the folder that holds config.json and the weights.")
        return str(Path(path).expanduser().resolve()), ""
    if v["source"] == "run":
        if not v["base_run"]:
            raise gr.Error("Pick the finished run to build on.")
        return ctx.runs().get(v["base_run"])["config"]["model"], v["base_run"]
    return BUILTIN_MODEL, ""


def form_config(v: dict, info: dict | None, model: str = BUILTIN_MODEL, base: str = ""):
    """The RunConfig the form's settings describe (with or without a dataset chosen)."""
    settings = {d.name: v[d.name] for d in advanced_declarations()}
    name = (v["run_name"] or "").strip() or (f"{info['name']}, {v['preset']}" if info else "")
    settings.update(method=v["method"], dataset=info["name"] if info else "", model=model, base_run=base, name=name)
    try:
        return build_config(settings)
    except ConfigError as exc:
        raise gr.Error(f"{label(exc.field)}: {exc.message}") from None


def build_run(ctx: Context, v: dict):
    """The RunConfig the form describes, and the dataset's info; errors name the box to fix."""
    info = dataset_info(ctx, v["dataset"])
    if info is None:
        raise gr.Error("Pick a dataset first (save one in the Data tab).")
    return form_config(v, info, *chosen_model(ctx, v)), info


def judge(ctx: Context, v: dict):
    """check_start() for the chosen model and settings, with the memory verdict: the one Start and `train` make."""
    info = dataset_info(ctx, v["dataset"])
    check = check_start(form_config(v, info, *chosen_model(ctx, v)), info, how=lambda changes: USE_FIT_HOW)
    if check.fit is None:
        raise ModelError(f"How much memory '{check.config.model}' needs is known once it is downloaded: press "
                         f"Download.")
    return check


def problem_html(exc: Exception) -> str:
    if isinstance(exc, gr.Error):
        message = exc.message
    elif isinstance(exc, TuneloopError):
        message = str(exc)
    else:  # the estimate is advice: it never stops the form from working
        message = f"The memory use could not be estimated ({type(exc).__name__})."
    return f'<div class="tl-memory tl-too_big">{esc(message)}</div>'


def advice_html(verdict) -> str:
    """The fit verdict when it is not the run as set: it names the changes that make it fit, or that nothing does."""
    if not verdict.fits:
        return (f'<div class="tl-advice tl-too_big"><b>{esc(verdict.message)}</b> Start refuses it: pick a smaller '
                f'model.</div>')
    if not verdict.changes:
        return ""
    return (f'<div class="tl-advice tl-fits"><b>{esc(verdict.message)}</b> Changes: '
            f'{esc(change_words(verdict.changes))}.</div>')


def refresh_fit(ctx: Context, v: dict):
    """The memory box, the advice under it with its "Use these settings" button, and the catalogue's verdicts."""
    table = catalogue_html(ctx, v) if v["source"] == "hub" else gr.skip()
    if v["source"] == "hub" and not (v["hub_model"] or "").strip():
        return PICK_A_MODEL, "", gr.update(visible=False), table
    try:
        check = judge(ctx, v)
    except Exception as exc:
        return problem_html(exc), "", gr.update(visible=False), table
    verdict = check.fit
    offer = verdict.fits and bool(verdict.changes)
    notes = "".join(f'<div class="tl-advice tl-tight">{esc(note)}</div>' for note in unusual_settings(check.config))
    return memory_html(check), advice_html(verdict) + notes, gr.update(visible=offer), table


def use_fit_settings(ctx: Context, v: dict):
    """'Use these settings': the fit verdict's changes go into the Advanced settings, shown open."""
    try:
        verdict = judge(ctx, v).fit
    except Exception:
        verdict = None
    if verdict is None or not verdict.fits or not verdict.changes:
        raise gr.Error("There is nothing to change: press Check memory to see where the run stands.")
    changed = {name: getattr(verdict.config, name) for name in WHAT_CHANGES}
    gr.Info(f"Changed the Advanced settings: {change_words(verdict.changes)}.")
    return (*[gr.update(value=changed[name]) for name in WHAT_CHANGES], gr.Accordion(open=True),
            *refresh_fit(ctx, {**v, **changed}))


def catalogue_html(ctx: Context, v: dict) -> str:
    """Every catalogue model with its size, licence, template and whether it fits here with the form's settings, in
    the fit verdict's words (the ones `app.py models` prints)."""
    info = dataset_info(ctx, v["dataset"])
    try:
        listed = offers(form_config(v, info), seq_length=longest(info))
    except gr.Error as exc:
        return problem_html(exc)
    chosen = (v.get("hub_model") or "").strip().lower()
    rows = []
    for offer in listed:
        e, verdict = offer.entry, offer.verdict
        kind = "too_big" if not verdict.fits else ("tight" if verdict.tight or verdict.changes else "fits")
        rows.append(
            f'<tr class="{"tl-chosen" if e.id.lower() == chosen else ""}">'
            f'<td><b>{esc(e.name)}</b><br><span class="tl-id">{esc(e.id)}</span></td>'
            f'<td>{e.params_b:g} billion</td><td>{gb(e.download_bytes)}</td><td>{esc(e.licence)}</td>'
            f'<td>{"gated: needs a token" if e.gated else "open"}</td><td>{esc(family_name(e.template))}</td>'
            f'<td class="tl-verdict tl-{kind}">{esc(verdict.message)}</td>'
            f'<td>{esc(offer.state)}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("Model", "Parameters", "Download", "Licence", "Access", "Chat template",
                                             "Memory on this computer, with these settings", "Status"))
    return f'<div class="tl-models"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def entry_label(entry) -> str:
    gated = " · gated (needs a token)" if entry.gated else ""
    return f"{entry.name} · {entry.params_b:g}B parameters · licence {entry.licence}{gated} · template {family_name(entry.template)}"


def describe_model(ctx: Context, v: dict) -> str:
    """A few words on the chosen model: for a hub model its size, licence and state; for any model what training
    does with its chat template. Never downloads anything."""
    try:
        model, _ = chosen_model(ctx, v)
    except (gr.Error, TuneloopError):
        return ""
    lines = []
    if v["source"] == "hub":
        entry = find(model)
        folder = hub.pulled(model)
        if entry:
            access = (f" Gated: accept its licence on huggingface.co/{esc(entry.id)}, then give a Hugging Face token."
                      if entry.gated else "")
            lines.append(f"**{esc(entry.name)}**: {entry.params_b:g} billion parameters, {gb(entry.download_bytes)} "
                         f"to download, licence {esc(entry.licence)}.{access}")
        else:
            lines.append(f"**{esc(model)}** is not in Tuneloop's list: its size is known once it is downloaded.")
        lines.append(f"Downloaded: it lies in {esc(folder)}." if folder else
                     "Not downloaded yet: press **Download** (an interrupted download goes on where it stopped).")
        lines = [" ".join(lines)]
    try:
        lines.append(esc(template_note(model)))
        system = system_note(model)
        if system:
            lines.append(esc(system))
    except TuneloopError:
        pass
    return "\n\n".join(lines)


def on_hub_model(ctx: Context, v: dict):
    """The chosen hub model: its description, and the Download button while it is not downloaded, with the token box
    for a gated catalogue model or one typed by id (which may be gated)."""
    try:
        model_id = hub_id(v["hub_model"])
    except ModelError:
        model_id = ""
    entry = find(model_id)
    missing = bool(model_id) and needs_download(model_id)
    return (describe_model(ctx, v), gr.update(visible=missing and (entry is None or entry.gated)),
            gr.update(visible=missing), "")


def download(ctx: Context, v: dict):
    """Download the chosen hub model once, with a progress bar; pressing it again goes on from where it stopped.
    The token goes to the Hub only: it is not kept anywhere, and the box is emptied afterwards."""
    if v["source"] != "hub" or not (v["hub_model"] or "").strip():
        raise gr.Error("Pick a model from the Hugging Face Hub list first.")
    model_id = hub_id(v["hub_model"])
    progress, last = v["progress"], []

    def report(p: hub.DownloadProgress):
        last[:] = [p.text]
        progress(p.done_bytes / max(p.total_bytes, 1), desc=p.text)

    progress(0, desc=f"Asking the Hugging Face Hub for {model_id}")
    try:
        folder = hub.pull(model_id, token=(v["token"] or "").strip() or None, progress=report)
    except ModelError as exc:  # said next to the button (no network, gated, not found, cut off: press it again)
        return f"**Not downloaded.** {esc(exc)}", gr.skip(), gr.skip(), gr.skip()
    done = f" ({last[0]})" if last else ""
    gr.Info(f"Downloaded {model_id}.")
    return (f"Downloaded **{esc(model_id)}**{esc(done)}: kept in {esc(folder)} for every later run.",
            gr.update(value="", visible=False), gr.update(visible=False), describe_model(ctx, v))


def start_run(ctx: Context, v: dict):
    """Start: check_start() refuses what cannot work (wrong data, too big, not downloaded), as `train` does; then the
    run is queued and followed in Progress. A catalogue model is judged before it is downloaded; any other hub model
    once it is."""
    config, info = build_run(ctx, v)
    check = check_start(config, info, how=lambda changes: USE_FIT_HOW)
    if isinstance(check.refusal, NotDownloaded):
        size = f" ({gb(check.refusal.download_bytes)})" if check.refusal.download_bytes else ""
        raise gr.Error(f"'{check.config.model}' is not downloaded yet: press Download{size} first, then Start.")
    check.or_raise()  # MethodMismatch or too big: a TuneloopError in words
    if check.estimate.verdict == "tight":
        gr.Warning(check.memory_words)
    run_id = ctx.runner.submit(check.config)
    text = waiting_text(config.name or run_id, ctx.runs().ahead(run_id))
    gr.Info(text)
    return esc(text), run_id, gr.Tabs(selected="live"), memory_html(check)


def started_status(ctx: Context, v: dict):
    """What the line under Start says of the run this page started, as it stands now, and whether Stop can act on
    it: the words Start wrote ("waits in line") stayed after that run was stopped, and Stop was red when nothing ran."""
    if not v["watch"]:  # no run started here: the line keeps what it says ("Filled in from run ..." by Try this)
        return gr.skip(), gr.update(interactive=False)
    try:
        run = ctx.runs().get(v["watch"])
    except RunNotFound:  # deleted since
        return "", gr.update(interactive=False)
    run_id, name, status = run["id"], esc(run["name"]), run["status"]
    if status == "queued":
        text = esc(waiting_text(run["name"], ctx.runs().ahead(run_id)))
    elif status == "running":
        text = f"'{name}' is training. Follow it in the Progress tab."
    elif status == "done":
        text = f"'{name}' finished. Its results are in the Runs tab; export it in the Export tab."
    elif status == "stopped":
        text = f"'{name}' was stopped."
    else:
        text = f"'{name}' failed: the Progress tab says why."
    return text, gr.update(interactive=status in ACTIVE)


def stop_run(ctx: Context, v: dict) -> str:
    """Stop acts on the run this page started or follows, never on someone else's."""
    run_id = v["watch"]
    if not run_id:
        raise gr.Error("No run was started from this page. Stop a run from the Progress tab, where you can see it.")
    run = ctx.runs().get(run_id)
    if run["status"] not in ACTIVE:
        raise gr.Error(f"'{run['name']}' is not training or waiting, so there is nothing to stop.")
    ctx.runner.stop(run_id)
    return f"Stopping '{esc(run['name'])}' after its current step; it saves what it learned so far."


def speed(ctx: Context, v: dict) -> Speed:
    """This computer's training speed for the model the form starts from (unknown while none is picked)."""
    try:
        model, _ = chosen_model(ctx, v)
    except (gr.Error, TuneloopError):
        return Speed(None, "unknown")
    return training_speed(model, measured_speeds(ctx.runs()), loading.detect_hardware().device)


def refresh_choices(ctx: Context, v: dict):
    """New datasets and finished runs join the lists. A choice still on its list is left alone, not set again: set
    again from what the page held when the tab opened, it landed over what "Try this" had just filled in (the
    dataset went back, its method with it, and the run to build on was emptied)."""
    choices, finished = dataset_choices(ctx), finished_run_choices(ctx)
    names = [name for _, name in choices]
    dataset = gr.update(choices=choices) if v["dataset"] in names else \
        gr.update(choices=choices, value=names[-1] if names else None)
    gone = v["base_run"] and v["base_run"] not in [run_id for _, run_id in finished]
    return dataset, gr.update(choices=finished, value=None) if gone else gr.update(choices=finished)


def on_dataset(ctx: Context, v: dict):
    """The method that fits the data, its help, the preset cards, and the settings that follow the data."""
    info = dataset_info(ctx, v["dataset"])
    kind = info["kind"] if info else v["method"]
    about = bool(dataset_teaches_about_itself(ctx, v["dataset"]))
    return (gr.update(value=kind), method_markdown(kind, info),
            preset_cards(v["preset"], kind, info, speed(ctx, v) if info else None, about),
            *following_the_data(v, kind, about))


def on_method(ctx: Context, v: dict):
    """A preset or method chosen: the form filled with the preset's values for this data."""
    info = dataset_info(ctx, v["dataset"])
    about = bool(dataset_teaches_about_itself(ctx, v["dataset"]))
    return (method_markdown(v["method"], info), *form_updates(v["preset"], v["method"], about),
            preset_cards(v["preset"], v["method"], info, speed(ctx, v) if info else None, about), about, False)


def on_model_cards(ctx: Context, v: dict):
    """The preset cards again, with the speed of the model now chosen."""
    info = dataset_info(ctx, v["dataset"])
    return preset_cards(v["preset"], v["method"], info, speed(ctx, v) if info else None,
                        bool(dataset_teaches_about_itself(ctx, v["dataset"])))


def on_source(ctx: Context, v: dict):
    """The boxes of the chosen source; what is said about the model goes under the hub list for a hub model, under
    the choice otherwise."""
    hub_chosen = v["source"] == "hub"
    described = describe_model(ctx, v)
    return (gr.update(visible=v["source"] == "folder"), gr.update(visible=v["source"] == "run"),
            gr.update(visible=hub_chosen), *on_hub_model(ctx, v)[1:3], "" if hub_chosen else described,
            described if hub_chosen else "")


def on_model_change(ctx: Context, v: dict):
    return describe_model(ctx, v)


def create_train_tab(ctx: Context, demo: gr.Blocks, tabs: gr.Tabs, watch: gr.State, suggestion: gr.State | None = None):
    presets = list_presets()
    with gr.Tab("2. Train", id="train") as tab:
        with gr.Row():
            with gr.Column():
                dataset = gr.Dropdown(label="Dataset", choices=[], info="Saved in the Data tab.")
                method = gr.Radio([(m.title, m.name) for m in METHOD_TABLE.values()], value=default("method"),
                                  label=label("method"))
                method_help = gr.Markdown(method_markdown(default("method"), None))
            with gr.Column():
                source = gr.Radio(SOURCES, value="builtin", label="Start from", elem_id="tl-source")
                folder = gr.Textbox(label="Model folder", visible=False, placeholder="/path/to/a/hugging-face-model",
                                    max_length=text_cap("folder"),
                                    info="A folder with config.json and .safetensors weights.")
                base_run = gr.Dropdown(label=label("base_run"), choices=[], visible=False,
                                       info="Its adapter is trained further, e.g. DPO after SFT.")
                model_info = gr.Markdown(elem_id="tl-model-info")
                run_name = gr.Textbox(label=label("name") + " (optional)", placeholder="e.g. polite answers, try 1",
                                      max_length=text_cap("run_name"))
        with gr.Column(visible=False) as hub_box:
            with gr.Row():
                hub_model = gr.Dropdown([(entry_label(e), e.id) for e in catalogue()], value=None, scale=3,
                                        label="Model from the Hugging Face Hub", allow_custom_value=True,
                                        filterable=True, elem_id="tl-hub-model",
                                        info="Pick one of the list (each is judged for this computer below), or "
                                             "type any Hugging Face id, owner/name.")
                token = gr.Textbox(label="Hugging Face token (gated models only)", type="password", visible=False,
                                   scale=2, elem_id="tl-hub-token",
                                   info="A read token from huggingface.co/settings/tokens; used for this download "
                                        "only, never saved.")
                with gr.Column(scale=1, min_width=160):
                    get = gr.Button("Download", visible=False, elem_id="tl-download-model")
            hub_info = gr.Markdown(elem_id="tl-hub-info")
            download_status = gr.Markdown(elem_id="tl-download-status")
            with gr.Accordion("Models from the Hugging Face Hub: will each fit on this computer?", open=True):
                gr.Markdown("Judged with the settings below before anything is downloaded: the model's weights, the "
                            "adapter, the optimizer and the examples in memory, against the free memory of this "
                            "computer (its GPU where there is one).")
                models_table = gr.HTML(elem_id="tl-models")
        preset = gr.Radio([(p["title"], p["name"]) for p in presets], value=DEFAULT_PRESET,
                          label="How much training (preset)")
        cards = gr.HTML(preset_cards(DEFAULT_PRESET, default("method"), None, None))
        with gr.Accordion("Advanced settings", open=False, elem_id="tl-advanced") as advanced:
            gr.Markdown("Filled in by the preset. Change them only if you know why; each says what it does.")
            widgets = create_settings_form(DEFAULT_PRESET, default("method"))
        memory = gr.HTML('<div class="tl-memory">Pick a dataset to see whether the run fits in memory.</div>',
                         elem_id="tl-memory")
        with gr.Row(equal_height=True):
            advice = gr.HTML(elem_id="tl-fit-advice")
            use_fit = gr.Button("Use these settings", visible=False, scale=0, min_width=180, elem_id="tl-use-fit")
        with gr.Row():
            check = gr.Button("Check memory", scale=1)
            start = gr.Button("Start training", variant="primary", scale=2)
            stop = gr.Button("Stop training", variant="stop", scale=1, interactive=False)
        status = gr.Markdown(elem_id="tl-train-status")
        # Whether the form's values were filled for examples about the assistant, and whether the person has typed
        # one of the values such examples get from the preset since (following_the_data).
        followed = gr.State(False)
        typed = gr.State(False)

    form = [widgets[d.name] for d in advanced_declarations()]
    following = [widgets[name] for name in about_itself_settings()]
    everything = {"dataset": dataset, "method": method, "source": source, "hub_model": hub_model, "folder": folder,
                  "base_run": base_run, "run_name": run_name, "preset": preset, **widgets}
    choices = {"dataset": dataset, "base_run": base_run}
    fit = [memory, advice, use_fit, models_table]
    # Several events redraw the memory box, each with the form as it stood when it fired. One at a time, in the
    # order they fired, and a change made while one is waiting is answered after it: so the box always ends on the
    # latest choice. (Run side by side on a busy machine, a slow answer for the page's first state arrived after
    # the answer for DPO, and one for DPO after the answer for SFT.)
    in_order = dict(concurrency_id="tl-fit", concurrency_limit=1, trigger_mode="always_last")
    model_fields = {"source": source, "hub_model": hub_model, "folder": folder, "base_run": base_run}
    # The preset cards' times depend on the model too; drawn in the same queue, so the latest choice wins there as well.
    picks = {"dataset": dataset, "preset": preset, "method": method, **model_fields}
    on([tab.select, demo.load], ctx, refresh_choices, choices, [dataset, base_run])
    on(dataset.change, ctx, on_dataset,
       {**picks, "followed": followed, "typed": typed, **{name: widgets[name] for name in about_itself_settings()}},
       [method, method_help, cards, followed, *following], **in_order).then(
        *bind(ctx, refresh_fit, everything), fit, **in_order)
    for box in following:  # typed by the person (not filled in by a handler): it stays when the dataset changes
        box.input(lambda: True, None, typed)
    on([method.change, preset.change], ctx, on_method, picks, [method_help, *form, cards, followed, typed],
       **in_order).then(
        *bind(ctx, refresh_fit, everything), fit, **in_order)
    on([source.change, hub_model.change, folder.blur, base_run.change], ctx, on_model_cards, picks, cards,
       **in_order)
    on(source.change, ctx, on_source, model_fields, [folder, base_run, hub_box, token, get, model_info, hub_info]
       ).then(*bind(ctx, refresh_fit, everything), fit, **in_order)
    on(hub_model.change, ctx, on_hub_model, model_fields, [hub_info, token, get, download_status]).then(
        *bind(ctx, refresh_fit, everything), fit, **in_order)
    on([folder.blur, base_run.input], ctx, on_model_change, model_fields, model_info)
    # The verdicts follow the settings they depend on as the person changes them (not when a preset fills them), and
    # a setting outside its usual range is said there too.
    fit_inputs = [widgets[d.name].input for d in advanced_declarations() if d.meta["memory"] or d.meta["usual"]]
    on([folder.blur, base_run.change, check.click, *fit_inputs], ctx, refresh_fit, everything, fit, **in_order)
    on(use_fit.click, ctx, use_fit_settings, everything, [*[widgets[n] for n in WHAT_CHANGES], advanced, *fit],
       **in_order)
    on(get.click, ctx, download, {**model_fields, "token": token}, [download_status, token, get, hub_info],
       progress=True).then(*bind(ctx, refresh_fit, everything), fit, **in_order).then(
        *bind(ctx, on_model_cards, picks), cards, **in_order)  # a model's size is known once it is downloaded
    # In the memory box's queue too, so that no older redraw lands over Start's verdict; still once per click.
    on(start.click, ctx, start_run, everything, [status, watch, tabs, memory], concurrency_id="tl-fit",
       concurrency_limit=1)
    on(stop.click, ctx, stop_run, {"watch": watch}, status)
    on([tab.select, watch.change], ctx, started_status, {"watch": watch}, [status, stop])
    if suggestion is not None:  # "Try this" in the Runs tab
        settings = {d.name: widgets[d.name] for d in advanced_declarations()}
        on(suggestion.change, ctx, fill_train_form, {"suggestion": suggestion},
           {"dataset": dataset, "method": method, "source": source, "folder": folder, "base_run": base_run,
            "hub_model": hub_model, "run_name": run_name, **settings, "status": status, "followed": followed,
            "typed": typed}).then(
            *bind(ctx, refill_settings, {"suggestion": suggestion}, outputs=settings)).then(
            *bind(ctx, refresh_fit, everything), fit, **in_order).then(
            *bind(ctx, on_model_cards, picks), cards, **in_order)  # the cards' times for the data filled in


CSS = """
.tl-cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
.tl-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px; }
.tl-card-chosen { border: 2px solid var(--color-accent); background: var(--background-fill-secondary); }
.tl-card-title { font-weight: 700; font-size: 15px; margin-bottom: 4px; }
.tl-card-text { font-size: 14px; }
.tl-card-time { font-size: 13px; margin-top: 6px; font-style: italic; }
.tl-memory { border-radius: 8px; padding: 10px 12px; border: 1px solid var(--border-color-primary); font-size: 14px; }
.tl-memory table { margin-top: 6px; font-size: 13px; }
.tl-memory td { padding: 1px 12px 1px 0; }
.tl-fits { border-left: 5px solid #16a34a; }
.tl-tight { border-left: 5px solid #d97706; }
.tl-too_big { border-left: 5px solid #dc2626; }
.tl-advice { border-radius: 8px; padding: 8px 12px; font-size: 14px; }
.tl-models { max-height: 420px; overflow-y: auto; }
.tl-models table { width: 100%; border-collapse: collapse; font-size: 13px; border: 0; }
.tl-models tr { border: 0; }
.tl-models th { text-align: left; position: sticky; top: 0; background: var(--background-fill-secondary); }
.tl-models th, .tl-models td { padding: 4px 8px; border: 0; border-bottom: 1px solid var(--border-color-primary);
                               vertical-align: top; }
.tl-models .tl-id { font-size: 12px; color: var(--body-text-color-subdued); }
.tl-models tr.tl-chosen td { background: var(--background-fill-secondary); font-weight: 600; }
.tl-models td.tl-verdict.tl-fits { border-left: 4px solid #16a34a; }
.tl-models td.tl-verdict.tl-tight { border-left: 4px solid #d97706; }
.tl-models td.tl-verdict.tl-too_big { border-left: 4px solid #dc2626; }
"""
