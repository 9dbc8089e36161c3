"""Alembic's script directory, shipped inside the wheel as the package flexnet.migrations.

Alembic runs ``env.py`` and the revisions itself; flexnet.resources locates this folder.
"""
