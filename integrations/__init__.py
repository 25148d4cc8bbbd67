"""Workspace Administration → Configuration → Integrations: the catalogue and Salesforce's page."""
