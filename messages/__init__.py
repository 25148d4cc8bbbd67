"""Researchers' side of invitations: message templates per study, task and community, with a
preview in a real participant's values, and each invitation's record (status, consent evidence)."""
