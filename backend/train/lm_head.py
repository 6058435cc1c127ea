"""The LM head's share of a training step: score only the positions that have a label, on every device.

TRL's trainers (SFT, DPO, KTO) project the last hidden states through the LM head in a fused, chunked function that
never holds the whole (tokens x vocabulary) logits, and that recomputes each tile in the backward pass. With Triton
(a GPU) it scores only the positions whose next token has a label; everywhere else it scores every position, the
prompt and the padding included, so that accelerators which compile each shape (Neuron, XLA) see one shape per
batch. A CPU compiles nothing, so that choice only costs it: the 49,152-wide projection, its recomputation and the
softmax work run for every prompt token. Scored only where there is a label, the loss and its gradient are the same
(the other positions are zeros either way), and the step is shorter (docs/benchmarks.md, "The LM head on the CPU").
"""
COMPILING_DEVICES = ("xla", "neuron")  # one shape per batch matters there: left as TRL does it


def score_labelled_positions_only() -> bool:
    """Make TRL's fused LM head score only labelled positions on every device but the compiling ones. Returns
    whether TRL has the switch this relies on (trl.trainer.utils._use_triton, TRL 1.x); without it nothing changes."""
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        return False
    if getattr(original, "labelled_only", False):
        return True

    def compact(device) -> bool:
        return device.type not in COMPILING_DEVICES or original(device)

    compact.labelled_only = True
    trl_utils._use_triton = compact  # read by add_fused_lm_head's forward only to choose which positions to score
    return True
