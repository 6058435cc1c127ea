"""The Train tab filled in from a run's suggestion ("Try this" in the Runs tab): dataset, method, what to start from,
name and every advanced setting, by name. Nothing is started: the person checks the form and presses Start."""
from pathlib import Path

import gradio as gr

from backend.config import BUILTIN_MODEL
from ui.common import Context, dataset_choices, dataset_teaches_about_itself, esc, finished_run_choices
from ui.settings_form import advanced_declarations


def fill_train_form(ctx: Context, v: dict) -> dict:
    """The Train tab's fields by name (dataset, method, source, folder, base_run, hub_model, run_name, each advanced
    setting, status; followed and typed, which tell train_tab.following_the_data to leave the run's settings as they
    are) from `v["suggestion"]`, with a line saying what changed; a field left out stays as it is."""
    hint = v["suggestion"]
    if not hint:
        return {}
    config = hint["config"]
    source = ("run" if config.get("base_run") else "builtin" if config["model"] == BUILTIN_MODEL else
              "folder" if Path(config["model"]).is_dir() else "hub")
    change = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in hint["change"].items())
    # The lists as they are now, with the values: a dataset or run made since the Train tab last looked (labels
    # trained as DPO make both) would otherwise be refused by its list.
    datasets = dataset_choices(ctx)
    saved = config["dataset"] in [name for _, name in datasets]
    status = (f"Filled in from run **{esc(hint['run'])}** with the diagnosis' change ({esc(change)}): check it, "
              "then press Start training." + ("" if saved else f" Its data, '{esc(config['dataset'])}', is not a saved "
                                                               "dataset: save it in the Data tab and pick it above."))
    filled = {"method": gr.update(value=config["method"]), "source": gr.update(value=source),
              "folder": gr.update(value=config["model"] if source == "folder" else "", visible=source == "folder"),
              "base_run": gr.update(choices=finished_run_choices(ctx), value=config.get("base_run") or None,
                                    visible=source == "run"),
              "run_name": config["name"], **form_values_of(config), "status": status}
    if saved:
        filled["dataset"] = gr.update(choices=datasets, value=config["dataset"])
        # the run's own settings, not the preset's for its data: the Train tab leaves them as they are
        filled["followed"] = bool(dataset_teaches_about_itself(ctx, config["dataset"]))
        filled["typed"] = True
    if source == "hub":
        filled["hub_model"] = gr.update(value=config["model"])
    return filled


def form_values_of(config: dict) -> dict:
    """Every advanced setting by name: its value in `config`, shown where the method uses it."""
    return {d.name: gr.update(value=config[d.name], visible=config["method"] in d.meta["methods"])
            for d in advanced_declarations()}


def refill_settings(ctx: Context, v: dict) -> dict:
    """The advanced settings again, by name, after a method change has reset them to the preset's."""
    if not v["suggestion"]:
        return {}
    return form_values_of(v["suggestion"]["config"])
