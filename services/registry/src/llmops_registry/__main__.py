"""``python -m llmops_registry``: run the registry worker."""

from llmops_registry.app import main

if __name__ == "__main__":
    main()
