"""tiny_model: a tiny, randomly initialised model of a whitelisted family, for smoke tests.

``python -m llmops_trainer.tiny_model --family llama --output DIR
[--max-position-embeddings 2048] [--vocab-size 512]``

People without a GPU (and this repository's tests) need a base model that trains in seconds
and needs no download: this builds one from a config (hidden size 64, 2 layers, 4 heads) and a
tokenizer trained locally on a built-in text (byte-level BPE, so it encodes any text), saves an
ordinary Hugging Face directory and labels it loudly (README.md, ``llmops-tiny-model.json``):
its weights are random, it knows nothing. Causal families get a simple chat template; ``bert``
is a plain ``BertModel`` directory that sentence-transformers loads with mean pooling.

Prints one JSON line ``{"family", "path", "max_position_embeddings"}`` on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from llmops_trainer.cli import new_app, run_stage
from llmops_trainer.vocab import ModelFamily

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

LABEL_FILE: Final = "llmops-tiny-model.json"
HIDDEN: Final = 64
LAYERS: Final = 2
HEADS: Final = 4
INTERMEDIATE: Final = 128

CHAT_TEMPLATE: Final = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
"""User and assistant turns, each ``<|role|>\\n<content>``; an assistant turn ends with EOS."""

CORPUS: Final = (
    "The quick brown fox jumps over the lazy dog. A model learns from data; the data tells "
    "it what to say. Question: what is the answer? Context: the answer is in the context. "
    "Answer: it is. Instructions, responses, prompts, chosen and rejected completions, "
    "queries, positive and negative passages. 0 1 2 3 4 5 6 7 8 9 10 100 1000 + - * / = ? ! "
    "Hello, world. How are you today? I am fine, thank you. Please summarise the document. "
    "Translate the sentence. Write a short story about a robot who learns to paint."
)

SPECIALS: Final = {
    ModelFamily.LLAMA: {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"},
    ModelFamily.MISTRAL: {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"},
    ModelFamily.GEMMA: {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"},
    ModelFamily.BERT: {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    },
}

README: Final = """# Tiny {family} model (random weights): smoke tests only

Built by `python -m llmops_trainer.tiny_model --family {family}`: a {family} architecture with
hidden size {hidden}, {layers} layers, {heads} heads and max_position_embeddings {positions},
**randomly initialised**, with a byte-level BPE tokenizer of {vocab} tokens trained on a few
sentences. It knows nothing; it exists so the training pipeline can run end to end on a CPU in
seconds without downloading a model. Do not serve it.
"""

app = new_app("Build a tiny random-weight model of a family (smoke tests only).")


@app.command()
def tiny_model(
    family: Annotated[ModelFamily, typer.Option("--family", help="Model family to build.")],
    output: Annotated[Path, typer.Option("--output", help="Directory to write the model to.")],
    max_position_embeddings: Annotated[
        int, typer.Option("--max-position-embeddings", min=8, help="Longest sequence.")
    ] = 2048,
    vocab_size: Annotated[
        int, typer.Option("--vocab-size", min=300, help="Target tokenizer size (BPE merges).")
    ] = 512,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random weights.")] = 0,
) -> None:
    """Write the model directory and print one JSON line describing it."""
    path = build(
        family,
        output,
        max_position_embeddings=max_position_embeddings,
        vocab_size=vocab_size,
        seed=seed,
    )
    line = {
        "family": family.value,
        "path": str(path),
        "max_position_embeddings": max_position_embeddings,
    }
    print(json.dumps(line), flush=True)


def build(
    family: ModelFamily,
    output: Path,
    *,
    max_position_embeddings: int = 2048,
    vocab_size: int = 512,
    seed: int = 0,
) -> Path:
    """Build and save the tiny model; its directory."""
    import torch

    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family, vocab_size)
    torch.manual_seed(seed)
    model = _model(family, tokenizer, max_position_embeddings)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    label = {
        "family": family.value,
        "max_position_embeddings": max_position_embeddings,
        "random_weights": True,
        "purpose": "smoke tests only",
    }
    (output / LABEL_FILE).write_text(json.dumps(label, indent=2) + "\n")
    (output / "README.md").write_text(
        README.format(
            family=family.value,
            hidden=HIDDEN,
            layers=LAYERS,
            heads=HEADS,
            positions=max_position_embeddings,
            vocab=len(tokenizer),
        )
    )
    return output


def build_tokenizer(family: ModelFamily, vocab_size: int) -> PreTrainedTokenizerBase:
    """A byte-level BPE trained on :data:`CORPUS`, with the family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS[family]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([CORPUS] * 4, trainer)
    if family is ModelFamily.BERT:
        cls, sep = specials["cls_token"], specials["sep_token"]
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, bpe.token_to_id(cls)), (sep, bpe.token_to_id(sep))],
        )
        return PreTrainedTokenizerFast(tokenizer_object=bpe, **specials)  # type: ignore[no-untyped-call]
    bos = specials["bos_token"]
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bpe.token_to_id(bos))]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, **specials)  # type: ignore[no-untyped-call]
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _model(family: ModelFamily, tokenizer: PreTrainedTokenizerBase, positions: int) -> Any:
    import transformers

    sizes: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "max_position_embeddings": positions,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if family is ModelFamily.BERT:
        return transformers.BertModel(transformers.BertConfig(**sizes))
    causal = {
        **sizes,
        "num_key_value_heads": HEADS,
        "head_dim": HIDDEN // HEADS,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if family is ModelFamily.LLAMA:
        return transformers.LlamaForCausalLM(
            transformers.LlamaConfig(**causal, tie_word_embeddings=False)
        )
    if family is ModelFamily.MISTRAL:
        return transformers.MistralForCausalLM(
            transformers.MistralConfig(**causal, sliding_window=None, tie_word_embeddings=False)
        )
    return transformers.GemmaForCausalLM(transformers.GemmaConfig(**causal))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit code."""
    return run_stage("tiny-model", app, argv, report=False)


if __name__ == "__main__":
    sys.exit(main())
