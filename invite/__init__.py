"""The participant's pages: answer an invitation, unsubscribe. Public (no account), signed links."""
