"""The model-family whitelist table and architecture lookup."""

from __future__ import annotations

import pytest

from llmops_shared.specs import (
    MODEL_FAMILIES,
    JobType,
    family_for_architecture,
    family_for_architectures,
    get_family,
    supported_families,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("architecture", "family"),
    [
        ("LlamaForCausalLM", "llama"),
        ("MistralForCausalLM", "mistral"),
        ("GemmaForCausalLM", "gemma"),
        ("BertModel", "bert"),
        ("GPT2LMHeadModel", None),
        ("llamaforcausallm", None),  # config.json spelling is exact
        ("", None),
    ],
)
def test_family_for_architecture(architecture: str, family: str | None) -> None:
    assert family_for_architecture(architecture) == family


@pytest.mark.parametrize(
    ("architectures", "family"),
    [
        (["MistralForCausalLM"], "mistral"),
        (["SomethingCustom", "BertModel"], "bert"),
        (["GPT2LMHeadModel"], None),
        ([], None),
    ],
)
def test_family_for_architectures(architectures: list[str], family: str | None) -> None:
    assert family_for_architectures(architectures) == family


def test_whitelist_is_the_four_seed_families() -> None:
    assert supported_families() == ("llama", "mistral", "gemma", "bert")


@pytest.mark.parametrize("name", ["llama", "mistral", "gemma"])
def test_decoder_families_support_every_job_type(name: str) -> None:
    family = get_family(name)

    assert family is not None
    assert all(family.supports(job_type) for job_type in JobType)


def test_bert_is_embedding_only() -> None:
    bert = get_family("bert")

    assert bert is not None
    assert [j for j in JobType if bert.supports(j)] == [JobType.EMBEDDING]


def test_unknown_family_is_none() -> None:
    assert get_family("gpt") is None


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODEL_FAMILIES["gpt"] = MODEL_FAMILIES["llama"]  # type: ignore[index]
