"""``python -m llmops_github_sync``: run the github-sync worker."""

from llmops_github_sync.app import main

if __name__ == "__main__":
    main()
