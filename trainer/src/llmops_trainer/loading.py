"""Loading tokenizers and causal LMs from a resolved :class:`ModelSource`.

Imports transformers lazily: a stage that never loads a model does not pay ~8 s for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llmops_trainer.locations import ModelSource

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_log = logging.getLogger(__name__)


def load_tokenizer(source: ModelSource) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token (EOS when the tokenizer has none: causal LMs
    often ship without one, and batching needs it)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.name_or_path, revision=source.revision)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    source: ModelSource,
    *,
    dtype: torch.dtype,
    from_scratch: bool = False,
    quantization: Any = None,
    device_map: Any = None,
) -> PreTrainedModel:
    """A causal LM: the pretrained weights, or (``from_scratch``, PRETRAIN) the architecture of
    ``config.json`` with fresh random weights (any weights in the directory are ignored)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if from_scratch:
        config = AutoConfig.from_pretrained(source.name_or_path, revision=source.revision)
        _log.info(
            "building %s from %s with random weights (PRETRAIN trains from scratch)",
            type(config).__name__,
            source.uri,
        )
        model: PreTrainedModel = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            config, dtype=dtype
        )
        return model
    kwargs: dict[str, Any] = {"dtype": dtype, "revision": source.revision}
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if device_map is not None:
        kwargs["device_map"] = device_map
    loaded: PreTrainedModel = AutoModelForCausalLM.from_pretrained(source.name_or_path, **kwargs)
    return loaded
