"""Who may do what: principals (API keys, OIDC tokens), their roles per environment, the
rule each operation needs, and the audit trail (docs/security.md)."""
