"""WSGI entry point: ``gunicorn wsgi:app`` (settings from the environment, see README)."""
from core import create_app

app = create_app()
