"""Alembic migrations of claimcoder's PostgreSQL schema, shipped in the wheel.

``claimcoder db upgrade|downgrade`` runs them through :mod:`migrations.runner`; ``alembic.ini`` at
the repository root points the alembic command at the same scripts.
"""
