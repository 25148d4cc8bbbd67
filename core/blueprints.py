"""The web blueprints, in registration order. Each entry is "module:attribute"."""
BLUEPRINTS = [
    "auth.views:bp",
    "workspace.views:bp",
    "participants.views:bp",
    "research.views:bp",
    "integrations.views:bp",
    "wizard:bp",
    "invite.views:bp",
    "messages.views:bp",
    "operations.views:bp",
]
