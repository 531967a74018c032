"""The gateway's database: models, engine and sessions, migrations runner, queries."""
