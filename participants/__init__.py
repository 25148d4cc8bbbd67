"""The participant pool and a participant's page."""
