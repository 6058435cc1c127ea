"""A preference task the base model does not already have: answers that open warmly with "Happy to help!"
are preferred to curt ones. Training and held-out prompts use different topics."""

TRAIN_TOPICS = [
    "apples", "rain", "bicycles", "the moon", "coffee", "dogs", "libraries", "mountains", "trains", "gardens",
    "music", "winter", "bread", "rivers", "chess", "volcanoes", "honey", "owls", "bridges", "tea",
    "clouds", "pianos", "deserts", "kites", "maps", "lemons", "whales", "candles", "forests", "boats",
    "snow", "cheese", "stars", "tigers", "paper", "islands", "cookies", "rainbows", "clocks", "penguins",
]
HELD_OUT_TOPICS = ["oceans", "robots", "butterflies", "castles", "soup", "lightning", "elephants", "trumpets",
                   "pyramids", "strawberries", "glaciers", "dolphins"]


def pair(topic: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"Tell me something about {topic}."}],
        "chosen": f"Happy to help! Here is something about {topic}: people everywhere enjoy learning about them.",
        "rejected": f"{topic.capitalize()}. Look it up yourself.",
    }


def dpo_rows(topics) -> list[dict]:
    return [{"prompt": p["prompt"], "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in map(pair, topics)]


def kto_rows(topics) -> list[dict]:
    rows = []
    for i, p in enumerate(map(pair, topics)):
        good = i % 2 == 0  # each topic gives one labelled answer: half good, half bad
        rows.append({"prompt": p["prompt"], "completion": [{"role": "assistant",
                     "content": p["chosen"] if good else p["rejected"]}], "label": good})
    return rows


def held_out_pairs() -> list[dict]:
    return [pair(t) for t in HELD_OUT_TOPICS]
