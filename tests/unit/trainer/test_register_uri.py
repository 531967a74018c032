"""register's storage_uri: the version's source as a model server can read it."""

from __future__ import annotations

import pytest

from llmops_trainer.register import storage_uri

pytestmark = pytest.mark.unit

SOURCE = "mlflow-artifacts:/3/0a1b2c/artifacts/model"


@pytest.mark.parametrize(
    ("source", "destination", "expected"),
    [
        (SOURCE, "/srv/mlflow/artifacts", "/srv/mlflow/artifacts/3/0a1b2c/artifacts/model"),
        (SOURCE, "/srv/mlflow/artifacts/", "/srv/mlflow/artifacts/3/0a1b2c/artifacts/model"),
        (SOURCE, "s3://bucket", "s3://bucket/3/0a1b2c/artifacts/model"),
        (SOURCE, "s3://bucket/mlflow", "s3://bucket/mlflow/3/0a1b2c/artifacts/model"),
        (SOURCE, "file:///data/mlflow", "file:///data/mlflow/3/0a1b2c/artifacts/model"),
        (
            "mlflow-artifacts://mlflow.svc:5000/3/0a1b2c/artifacts/model",
            "s3://bucket",
            "s3://bucket/3/0a1b2c/artifacts/model",
        ),
        (SOURCE, None, SOURCE),
        (SOURCE, "", SOURCE),
        (
            "s3://other/3/0a1b2c/artifacts/model",
            "s3://bucket",
            "s3://other/3/0a1b2c/artifacts/model",
        ),
        ("/mlruns/3/0a1b2c/artifacts/model", "/srv", "/mlruns/3/0a1b2c/artifacts/model"),
        (  # a project under a directory with a space: a URI, since event URIs allow none
            SOURCE,
            "/Users/Jane Doe/.llmops/mlflow/artifacts",
            "file:///Users/Jane%20Doe/.llmops/mlflow/artifacts/3/0a1b2c/artifacts/model",
        ),
    ],
)
def test_storage_uri(source: str, destination: str | None, expected: str) -> None:
    assert storage_uri(source, destination) == expected
