"""``python -m llmops_serving``: run the serving worker."""

from llmops_serving.app import main

if __name__ == "__main__":
    main()
