"""The web app for gunicorn: ``gunicorn flexnet.wsgi:app`` (needs no checkout)."""

from flexnet import create_app

app = create_app()
