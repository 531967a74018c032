"""``python -m llmops_workflow``: run the workflow worker."""

from llmops_workflow.app import main

if __name__ == "__main__":
    main()
