"""``python -m llmops_versioning``: run the versioning worker."""

from llmops_versioning.app import main

if __name__ == "__main__":
    main()
