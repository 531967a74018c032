"""The model-family whitelist: which families the platform trains and serves, and how to
recognise them.

One small table, shared by the spec rules (is ``model_family`` allowed, and for this job type?)
and by the registry service (which family is a Hub model, judging by ``config.json``'s
``architectures``). Adding a family is one entry here plus trainer/serving images that know it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from llmops_shared.specs.vocab import JobType

_ALL_JOB_TYPES: Final = frozenset(JobType)


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """One whitelisted family.

    ``hf_architectures`` are the Hugging Face ``config.json`` ``architectures`` entries that
    identify the family; ``job_types`` are the job types it may be trained or served for
    (an encoder such as BERT cannot be a generator, so it is EMBEDDING only).
    """

    name: str
    hf_architectures: tuple[str, ...]
    job_types: frozenset[JobType] = _ALL_JOB_TYPES

    def supports(self, job_type: JobType | str) -> bool:
        """Whether this family may be used for ``job_type``."""
        return job_type in self.job_types


MODEL_FAMILIES: Final[MappingProxyType[str, ModelFamily]] = MappingProxyType(
    {
        family.name: family
        for family in (
            ModelFamily("llama", ("LlamaForCausalLM",)),
            ModelFamily("mistral", ("MistralForCausalLM",)),
            ModelFamily("gemma", ("GemmaForCausalLM",)),
            ModelFamily("bert", ("BertModel",), frozenset({JobType.EMBEDDING})),
        )
    }
)
"""The whitelist, keyed by the ``model_family`` value used in specs."""

_FAMILY_BY_ARCHITECTURE: Final[MappingProxyType[str, str]] = MappingProxyType(
    {arch: family.name for family in MODEL_FAMILIES.values() for arch in family.hf_architectures}
)


def supported_families() -> tuple[str, ...]:
    """The whitelisted family names, in table order (used in JSON Schema and docs)."""
    return tuple(MODEL_FAMILIES)


def get_family(name: str) -> ModelFamily | None:
    """The whitelisted family called ``name``, or None when it is not supported."""
    return MODEL_FAMILIES.get(name)


def family_for_architecture(architecture: str) -> str | None:
    """The family whose Hugging Face architecture is ``architecture`` (e.g. ``LlamaForCausalLM``
    -> ``llama``), or None when no whitelisted family uses it. Exact, case-sensitive match, as in
    ``config.json``."""
    return _FAMILY_BY_ARCHITECTURE.get(architecture)


def family_for_architectures(architectures: Iterable[str]) -> str | None:
    """The family of a model whose ``config.json`` lists ``architectures``: the first entry that
    maps to a whitelisted family, or None."""
    for architecture in architectures:
        family = family_for_architecture(architecture)
        if family is not None:
            return family
    return None
