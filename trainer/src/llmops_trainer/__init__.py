"""The reference trainer of the LLM-Ops pipeline (see docs/trainer.md)."""
