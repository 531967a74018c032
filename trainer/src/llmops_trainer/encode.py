"""Records -> what train feeds its library, tokenized once in prepare_data where the library
allows it, and truncated to ``--max-seq-len`` tokens of the base model's tokenizer.

* ``pretrain_corpus`` -> ``{"input_ids"}``: the text (+ EOS), truncated. TRL's SFTTrainer takes
  pre-tokenized rows as they are (language modelling: loss on every token).
* ``sft_pair`` / ``rag_qa`` -> ``{"input_ids", "completion_mask"}``: prompt and completion
  tokenized together, ``completion_mask`` 1 on the completion (response / answer) tokens only,
  which TRL's SFTTrainer (``completion_only_loss``) turns into labels. The text is the
  tokenizer's chat template (user prompt, assistant completion) when it has one, else
  ``prompt + "\\n" + completion + eos``. A row longer than ``max_seq_len`` loses the
  beginning of its prompt, so its completion always survives. A rag_qa prompt is
  ``"Context: <context>\\nQuestion: <question>\\nAnswer: "``.
* ``rlhf_pair`` -> ``{"prompt", "chosen", "rejected"}`` texts (conversational messages when the
  tokenizer has a chat template): DPOTrainer tokenizes them itself, so each text is only cut to
  ``max_seq_len`` tokens here.
* ``embedding_pair`` -> ``{"anchor", "positive"[, "negative"]}`` texts, each cut to
  ``max_seq_len`` tokens: sentence-transformers tokenizes in its collator, and
  MultipleNegativesRankingLoss reads the columns in this order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from llmops_trainer.records import Record
from llmops_trainer.vocab import DatasetType

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Row = dict[str, Any]


def rag_prompt(record: Record) -> str:
    """The prompt of a rag_qa record: its context, then its question."""
    return f"Context: {record['context']}\nQuestion: {record['question']}\nAnswer: "


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading ids ``a`` and ``b`` share (a prompt's tokens may merge with the
    completion's first ones, so the completion starts where they diverge)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Encoder:
    """Turns validated records of one dataset type into training rows."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, dataset_type: DatasetType, max_seq_len: int
    ) -> None:
        self.tokenizer = tokenizer
        self.dataset_type = dataset_type
        self.max_seq_len = max_seq_len
        self.truncated = 0
        """How many records lost tokens to ``max_seq_len``."""
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        encoders: dict[DatasetType, Callable[[Record], Row]] = {
            DatasetType.PRETRAIN_CORPUS: self._pretrain,
            DatasetType.SFT_PAIR: lambda r: self._prompt_completion(r["prompt"], r["response"]),
            DatasetType.RAG_QA: lambda r: self._prompt_completion(rag_prompt(r), r["answer"]),
            DatasetType.RLHF_PAIR: self._preference,
            DatasetType.EMBEDDING_PAIR: self._embedding,
        }
        self._encode = encoders[dataset_type]

    @property
    def representation(self) -> str:
        """``tokens`` (train uses the ids as they are) or ``text`` (its library tokenizes)."""
        tokenized = {DatasetType.PRETRAIN_CORPUS, DatasetType.SFT_PAIR, DatasetType.RAG_QA}
        return "tokens" if self.dataset_type in tokenized else "text"

    def encode(self, record: Record) -> Row:
        """The training row of ``record``."""
        return self._encode(record)

    def _ids(self, text: str, *, special: bool) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        return ids

    def _pretrain(self, record: Record) -> Row:
        ids = self._ids(record["text"], special=True)
        eos = self.tokenizer.eos_token_id
        if isinstance(eos, int) and (not ids or ids[-1] != eos):
            ids.append(eos)
        return {"input_ids": self._cut(ids)}

    def _prompt_completion(self, prompt: str, completion: str) -> Row:
        if self.chat:
            user = [{"role": "user", "content": prompt}]
            both = [*user, {"role": "assistant", "content": completion}]
            prompt_ids = self._ids(self._template(user, generation=True), special=False)
            full_ids = self._ids(self._template(both, generation=False), special=False)
        else:
            eos = self.tokenizer.eos_token or ""
            prompt_ids = self._ids(f"{prompt}\n", special=True)
            full_ids = self._ids(f"{prompt}\n{completion}{eos}", special=True)
        start = common_prefix_length(prompt_ids, full_ids)
        prompt_part, completion_part = full_ids[:start], full_ids[start:]
        if len(full_ids) > self.max_seq_len:
            self.truncated += 1
            prompt_part, completion_part = self._fit(prompt_part, completion_part)
        return {
            "input_ids": prompt_part + completion_part,
            "completion_mask": [0] * len(prompt_part) + [1] * len(completion_part),
        }

    def _fit(self, prompt: list[int], completion: list[int]) -> tuple[list[int], list[int]]:
        """Cut a too long row so its completion survives: cutting the end would drop the
        response (or the answer after a long context) and leave a row that teaches nothing.
        The prompt loses its beginning (its end, nearest the answer, matters most); a
        completion longer than the window keeps its beginning after a prompt tail of at most
        half the window."""
        window = self.max_seq_len
        kept_completion = min(len(completion), window - min(len(prompt), window // 2))
        kept_prompt = window - kept_completion
        return prompt[len(prompt) - kept_prompt :], completion[:kept_completion]

    def _template(self, messages: list[dict[str, str]], *, generation: bool) -> str:
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )
        return str(text)

    def _preference(self, record: Record) -> Row:
        clipped = self._clip_fields(record, ("prompt", "chosen", "rejected"))
        if not self.chat:
            return clipped
        return {
            "prompt": [{"role": "user", "content": clipped["prompt"]}],
            "chosen": [{"role": "assistant", "content": clipped["chosen"]}],
            "rejected": [{"role": "assistant", "content": clipped["rejected"]}],
        }

    def _embedding(self, record: Record) -> Row:
        clipped = self._clip_fields(record, ("query", "positive", "negative"))
        row = {"anchor": clipped["query"], "positive": clipped["positive"]}
        if "negative" in clipped:
            row["negative"] = clipped["negative"]
        return row

    def _clip_fields(self, record: Record, fields: Sequence[str]) -> dict[str, str]:
        out = {}
        cut = False
        for field in fields:
            if field in record:
                out[field], was_cut = self._clip(record[field])
                cut = cut or was_cut
        self.truncated += int(cut)
        return out

    def _clip(self, text: str) -> tuple[str, bool]:
        """``text`` cut to ``max_seq_len`` tokens, and whether it was cut."""
        try:
            encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        except NotImplementedError:  # slow tokenizers have no offsets: decode instead
            ids = self._ids(text, special=False)
            if len(ids) <= self.max_seq_len:
                return text, False
            decoded = self.tokenizer.decode(ids[: self.max_seq_len], skip_special_tokens=True)
            return str(decoded), True
        offsets = encoded["offset_mapping"]
        if len(offsets) <= self.max_seq_len:
            return text, False
        return text[: offsets[self.max_seq_len - 1][1]], True

    def _cut(self, ids: list[int]) -> list[int]:
        if len(ids) > self.max_seq_len:
            self.truncated += 1
        return ids[: self.max_seq_len]
