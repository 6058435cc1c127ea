"""Team tab (the owner's): labellers added and removed, how many of them judge each item and how far each label
queue is, and how far the labellers agree. Also how handlers learn who is signed in (`on_as`), for the labels they
store.

A labeller signs in with the name and the password made here, shown once, and gets their own page: Chat and Label
only (ui/app.py builds it at /label; ui/exposure.py RoleGuard refuses them everything else). Removing a labeller,
or giving them a new password, ends their sign-ins at once."""
import functools

import gradio as gr

from backend.accounts import LOCAL_OWNER, Account, AccountStore, SignIn
from backend.labels.agreement import KINDS as JUDGED, CHOICE_WORDS, agreement, agreement_lines
from backend.labels.export import label_stats
from backend.labels.overlap import MAX_OVERLAP, labellers_per_item, progress_words, set_labellers_per_item, team_progress
from backend.labels.shared import SharedQueues
from backend.labels.winrate import win_rates
from backend.limits import check_text
from ui.common import Context, esc, plain_errors
from ui.exposure import sign_out
from ui.verdict import winrate_markdown

SPLIT_SHOWN = 20  # split items listed on the page (all of them are in `labels stats --json`)


def sign_in_of(demo: gr.Blocks) -> SignIn:
    """The app's SignIn, set by launch(); a page built but not served has no passwords (its one user, the owner)."""
    return getattr(demo, "tuneloop_sign_in", None) or SignIn(None, lambda: None)


def account_of(demo: gr.Blocks, request: gr.Request | None) -> Account:
    account = sign_in_of(demo).account(getattr(request, "username", None))
    if account is None:  # RoleGuard ends a removed account's sign-in before this; a request already under way
        raise gr.Error("You were signed out: your account was removed. Ask the app's owner.", print_exception=False)
    return account


def on_as(triggers, ctx: Context, demo: gr.Blocks, handler, fields: dict | None, outputs, **kwargs):
    """ui.common.on, and `values["account"]`: the signed-in Account (the local owner without passwords), taken
    from the request on the server, never from the page."""
    fields = fields or {}
    names = {component: name for name, component in fields.items()}

    @plain_errors
    @functools.wraps(handler)
    def checked(values: dict):
        for name, value in values.items():
            check_text(name, value)
        return handler(ctx, values)

    def callback(data: dict, request: gr.Request):
        return checked({**{names[c]: value for c, value in data.items()}, "account": account_of(demo, request)})

    def callback_without_inputs(request: gr.Request):
        return checked({"account": account_of(demo, request)})

    return gr.on(triggers if isinstance(triggers, list) else [triggers],
                 callback if fields else callback_without_inputs, set(fields.values()) or None, outputs, **kwargs)


def owner_only(v: dict):
    if not v.get("account", LOCAL_OWNER).is_owner:
        raise gr.Error("Only the app's owner manages the team.", print_exception=False)


def team_view(ctx: Context, v: dict, demo):
    owner_only(v)
    sign_in = sign_in_of(demo)
    store = AccountStore(ctx.db())
    labellers = store.labellers()
    counts = label_stats(ctx.db())["labellers"]
    if not sign_in.passwords_on:
        intro = ("**Labellers sign in with a password, and this app runs without one.** Start it with "
                 "`TUNELOOP_AUTH=you:your-password` (you become its owner), then add labellers here.")
    else:
        intro = (f"You are the owner (**{esc(sign_in.owner_name)}**). A labeller signs in at this app's address with "
                 "the name and password made here and sees only **Chat** and **Label**.")
    rows = ["| Labeller | Added | Thumbs | A/B | Corrections |", "|---|---|---|---|---|"]
    for person in [{"name": "owner", "created": "(you)"}] + labellers:
        n = counts.get(person["name"], {"thumbs": 0, "choices": 0, "edits": 0})
        rows.append(f"| {esc(person['name'])} | {esc(person['created'][:10])} | {n['thumbs']} | {n['choices']} | "
                    f"{n['edits']} |")
    names = [p["name"] for p in labellers]
    return (intro + "\n\n" + "\n".join(rows), gr.update(choices=names, value=names[0] if names else None),
            agreement_text(ctx), labellers_per_item(ctx.db()), progress_text(ctx))


def progress_text(ctx: Context) -> str:
    """Everyone's progress: each label queue of this app (the items its labellers share), then every item judged so
    far, in the words `labels stats` prints."""
    lines = []
    for shared in SharedQueues.of(ctx).live():
        p = shared.progress()
        people = ", ".join(f"{esc(name)} {n}" for name, n in sorted(p["judged"].items())) or "nobody yet"
        lines.append(f"- {esc(shared.describe())}: **{p['complete']} of {p['items']} items complete**; judged by "
                     f"{people}")
    queues = (["**Label queues since the app started** (labellers who start the same prompts, models and settings "
               "share one):"] + lines) if lines else ["Nobody has started labelling since the app started."]
    return "\n".join(queues) + "\n\n" + "  \n".join(esc(line) for line in progress_words(team_progress(ctx.db())))


def set_overlap(ctx: Context, v: dict):
    owner_only(v)
    n = set_labellers_per_item(ctx.db(), v["overlap"])
    return progress_text(ctx), (f"Each item now goes to **{n}** labeller{'s' if n != 1 else ''}, from the next "
                                "item handed out, in the queues already started too.")


def show_progress(ctx: Context, v: dict):
    owner_only(v)
    return progress_text(ctx)


def agreement_text(ctx: Context) -> str:
    parts = []
    for kind in JUDGED:
        report = agreement(ctx.db(), kind)
        lines = agreement_lines(report)  # the first is the overall figure; those below, indented, its details
        parts.append("\n".join([f"**{esc(lines[0])}**"] + [f"- {esc(line.strip())}" for line in lines[1:]]))
        for item in report["split"][:SPLIT_SHOWN]:
            question = item["prompt"][-1]["content"]
            answers = "; ".join(f"answer {i}: “{esc(a[:120])}”" for i, a in enumerate(item["answers"], 1)) \
                if kind == "ab" else f"“{esc(item['answers'][0][:160])}”"
            votes = ", ".join(f"{esc(name)} {CHOICE_WORDS.get(value, value)}" for name, value in item["votes"].items())
            parts[-1] += f"\n    - **{esc(question[:160])}** {answers}: {votes}"
    return "\n\n".join(parts + win_rates_by_labeller(ctx))


def win_rates_by_labeller(ctx: Context) -> list[str]:
    """The blind A/B win-rates of everyone together (as the Runs tab shows them) and of each labeller, where two or
    more labellers voted blind; each says how many of its choices were left out for not being blind."""
    names = {r["id"]: r["name"] for r in ctx.runs().list()}
    voted = {name: report for name in label_stats(ctx.db())["labellers"]
             if (report := win_rates(ctx.db(), name))["pairs"]}
    if len(voted) < 2:
        return []
    return ["### Blind A/B win-rates, everyone's and by labeller", "#### Everyone\n\n" +
            winrate_markdown(win_rates(ctx.db()), names)] + [f"#### {esc(name)}\n\n" + winrate_markdown(report, names)
                                                             for name, report in voted.items()]


def add(ctx: Context, v: dict, demo):
    owner_only(v)
    sign_in = sign_in_of(demo)
    if not sign_in.passwords_on:
        raise gr.Error("Start the app with a password (TUNELOOP_AUTH=you:your-password) first: without one, nobody "
                       "signs in, so a labeller could not either.", print_exception=False)
    name = (v["name"] or "").strip()
    password = AccountStore(ctx.db()).add_labeller(name, owner_name=sign_in.owner_name)
    return (*team_view(ctx, v, demo), "",
            f"Added **{esc(name)}**. Their password, shown only now: `{password}`  \nGive it to them with the name "
            "**" + esc(name) + "**; it is stored only as a hash, so if it is lost, make a new one here.")


def remove(ctx: Context, v: dict, demo):
    owner_only(v)
    name = v["who"]
    if not name:
        raise gr.Error("Pick a labeller first.", print_exception=False)
    AccountStore(ctx.db()).remove(name)
    sign_out(getattr(demo, "server_app", None), name)
    return (*team_view(ctx, v, demo), "",
            f"Removed **{esc(name)}** and signed them out. Their labels stay, under their name.")


def new_password(ctx: Context, v: dict, demo):
    owner_only(v)
    name = v["who"]
    if not name:
        raise gr.Error("Pick a labeller first.", print_exception=False)
    password = AccountStore(ctx.db()).new_password(name)
    sign_out(getattr(demo, "server_app", None), name)
    return (*team_view(ctx, v, demo), "",
            f"New password for **{esc(name)}**, shown only now: `{password}`  \nThe old one no longer works, and "
            "they were signed out.")


def create_team_tab(ctx: Context, demo: gr.Blocks):
    def bound(handler):
        return functools.update_wrapper(functools.partial(handler, demo=demo), handler)

    with gr.Tab("8. Team", id="team") as tab:
        members = gr.Markdown(elem_id="tl-team-members")
        with gr.Row(equal_height=True):
            name = gr.Textbox(label="New labeller's name", placeholder="e.g. bea", max_length=40, scale=3,
                              elem_id="tl-team-name")
            add_button = gr.Button("Add labeller", variant="primary", scale=1, elem_id="tl-team-add")
        with gr.Row(equal_height=True):
            who = gr.Dropdown(label="Labeller", choices=[], scale=3, elem_id="tl-team-who")
            renew = gr.Button("New password", scale=1, elem_id="tl-team-renew")
            drop = gr.Button("Remove (signs them out)", variant="stop", scale=1, elem_id="tl-team-remove")
        said = gr.Markdown(elem_id="tl-team-said")
        gr.Markdown("### Who judges what\nEach item (a question and its answer, or its two answers) goes to this many "
                    "labellers, never twice to one. 1: each item once, the most items for the time; 2 or 3: the "
                    "labellers judge the same items, and you see how far they agree.")
        with gr.Row(equal_height=True):
            overlap = gr.Radio(list(range(1, MAX_OVERLAP + 1)), value=1, label="Labellers per item", scale=3,
                               elem_id="tl-team-overlap")
            refresh = gr.Button("Refresh progress", scale=1, elem_id="tl-team-refresh")
        progress = gr.Markdown(elem_id="tl-team-progress")
        gr.Markdown("### How far the labellers agree\nOn the items two or more of them judged: the same question and "
                    "the same answer(s). Cohen's kappa for two labellers, Krippendorff's alpha for more: 1 is full "
                    "agreement, 0 no more than chance. Each labeller against the majority of the others. Then the "
                    "items the team split on.")
        agreed = gr.Markdown(elem_id="tl-team-agreement")
    view = [members, who, agreed, overlap, progress]
    # On opening the tab only, not on every page load: the agreement's intervals resample the labels (seconds with
    # thousands of them).
    on_as(tab.select, ctx, demo, bound(team_view), None, view)
    on_as([add_button.click, name.submit], ctx, demo, bound(add), {"name": name}, view + [name, said])
    on_as(drop.click, ctx, demo, bound(remove), {"who": who}, view + [name, said])
    on_as(renew.click, ctx, demo, bound(new_password), {"who": who}, view + [name, said])
    on_as(overlap.input, ctx, demo, set_overlap, {"overlap": overlap}, [progress, said])
    on_as(refresh.click, ctx, demo, show_progress, None, progress)
