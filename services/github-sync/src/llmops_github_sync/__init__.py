"""The github-sync service: MLflow model versions written as Helm values files into Git.

Consumes ``llmops.models`` (``ModelVersionRegistered``, ``ModelVersionChanged``), makes
``{values_path}/{run_id}.yaml`` right in the target repository (GitHub through PyGithub, or any
git remote) and reports ``model_version`` status events; ``POST /poll`` reconciles every version
in MLflow in one commit. See docs/github-sync.md.
"""
