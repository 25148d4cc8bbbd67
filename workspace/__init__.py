"""The dashboard, Workspace Administration, settings, members, suppression list and outbox."""
