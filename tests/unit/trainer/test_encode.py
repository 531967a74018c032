"""prepare_data's encoding: loss masks on the completion only, chat template or plain text,
truncation counted, texts cut to max_seq_len tokens."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_trainer.encode import Encoder, common_prefix_length, rag_prompt
from llmops_trainer.tiny_model import build_tokenizer
from llmops_trainer.vocab import DatasetType, ModelFamily

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def chat_tokenizer() -> Any:
    return build_tokenizer(ModelFamily.LLAMA, 512)


@pytest.fixture(scope="module")
def plain_tokenizer() -> Any:
    tokenizer = build_tokenizer(ModelFamily.MISTRAL, 512)
    tokenizer.chat_template = None
    return tokenizer


def completion_text(tokenizer: Any, row: dict[str, list[int]]) -> str:
    ids = [i for i, m in zip(row["input_ids"], row["completion_mask"], strict=True) if m]
    return str(tokenizer.decode(ids))


def test_sft_with_a_chat_template_masks_all_but_the_response(chat_tokenizer: Any) -> None:
    encoder = Encoder(chat_tokenizer, DatasetType.SFT_PAIR, 128)
    row = encoder.encode({"prompt": "What is 2 plus 2?", "response": "It is 4."})
    assert set(row) == {"input_ids", "completion_mask"}
    assert len(row["input_ids"]) == len(row["completion_mask"])
    text = chat_tokenizer.decode(row["input_ids"])
    assert text.startswith("<s><|user|>\nWhat is 2 plus 2?\n<|assistant|>\n")
    assert completion_text(chat_tokenizer, row) == "It is 4.</s>\n"
    assert encoder.representation == "tokens"


def test_sft_without_a_chat_template_is_prompt_newline_response_eos(
    plain_tokenizer: Any,
) -> None:
    encoder = Encoder(plain_tokenizer, DatasetType.SFT_PAIR, 128)
    row = encoder.encode({"prompt": "Say hi", "response": "hi"})
    assert plain_tokenizer.decode(row["input_ids"]) == "<s>Say hi\nhi</s>"
    assert completion_text(plain_tokenizer, row).endswith("hi</s>")
    assert row["completion_mask"][0] == 0


def test_rag_prompt_holds_context_then_question(plain_tokenizer: Any) -> None:
    record = {"question": "Who?", "context": "Ann did it.", "answer": "Ann."}
    assert rag_prompt(record) == "Context: Ann did it.\nQuestion: Who?\nAnswer: "
    row = Encoder(plain_tokenizer, DatasetType.RAG_QA, 128).encode(record)
    assert plain_tokenizer.decode(row["input_ids"]).startswith("<s>Context: Ann did it.\n")
    assert "Ann.</s>" in completion_text(plain_tokenizer, row)


def test_pretraining_rows_are_tokens_with_eos_and_truncation_is_counted(
    chat_tokenizer: Any,
) -> None:
    encoder = Encoder(chat_tokenizer, DatasetType.PRETRAIN_CORPUS, 8)
    short = encoder.encode({"text": "hi"})
    assert short["input_ids"][-1] == chat_tokenizer.eos_token_id
    long = encoder.encode({"text": "The quick brown fox jumps over the lazy dog " * 5})
    assert len(long["input_ids"]) == 8
    assert encoder.truncated == 1


def test_preference_rows_keep_conversational_texts(chat_tokenizer: Any) -> None:
    encoder = Encoder(chat_tokenizer, DatasetType.RLHF_PAIR, 128)
    row = encoder.encode({"prompt": "p", "chosen": "good", "rejected": "bad"})
    assert row == {
        "prompt": [{"role": "user", "content": "p"}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
    }
    assert encoder.representation == "text"


def test_embedding_rows_are_anchor_positive_negative_cut_to_max_tokens(
    plain_tokenizer: Any,
) -> None:
    encoder = Encoder(plain_tokenizer, DatasetType.EMBEDDING_PAIR, 4)
    long = "The quick brown fox jumps over the lazy dog"
    row = encoder.encode({"query": "fox", "positive": long, "negative": "dog"})
    assert list(row) == ["anchor", "positive", "negative"]
    assert row["anchor"] == "fox"
    assert long.startswith(row["positive"])
    assert len(plain_tokenizer(row["positive"], add_special_tokens=False)["input_ids"]) == 4
    assert encoder.truncated == 1
    assert "negative" not in encoder.encode({"query": "a", "positive": "b"})


def test_common_prefix_length() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2


def test_a_long_context_loses_its_beginning_never_the_answer(plain_tokenizer: Any) -> None:
    """Cutting the end of a rag_qa row with a long context would leave no answer token: a row
    that teaches nothing (and a 0/0 loss in a batch of such rows)."""
    encoder = Encoder(plain_tokenizer, DatasetType.RAG_QA, 24)
    context = " ".join(f"fact {i} is true." for i in range(40))
    row = encoder.encode({"question": "Which?", "context": context, "answer": "Fact 7."})
    assert len(row["input_ids"]) == 24
    assert completion_text(plain_tokenizer, row) == "Fact 7.</s>"
    assert plain_tokenizer.decode(row["input_ids"]).endswith(
        "Question: Which?\nAnswer: \nFact 7.</s>"
    )
    assert encoder.truncated == 1


def test_a_completion_longer_than_the_window_keeps_a_prompt_tail_and_its_start(
    plain_tokenizer: Any,
) -> None:
    encoder = Encoder(plain_tokenizer, DatasetType.SFT_PAIR, 16)
    response = " ".join(["word"] * 40)
    row = encoder.encode({"prompt": "Write many words please", "response": response})
    assert len(row["input_ids"]) == 16
    kept = sum(row["completion_mask"])
    assert 8 <= kept < 16  # at most half the window for the prompt's end
    assert row["completion_mask"] == [0] * (16 - kept) + [1] * kept
    assert completion_text(plain_tokenizer, row).startswith("word word")
