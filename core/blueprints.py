"""The web blueprints, in registration order. Each entry is "module:attribute"."""
BLUEPRINTS = [
]
