"""``python -m llmops_tracking``: run the tracking worker."""

from llmops_tracking.app import main

if __name__ == "__main__":
    main()
