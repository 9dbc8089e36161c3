from flexnet.wsgi import app

__all__ = ["app"]
