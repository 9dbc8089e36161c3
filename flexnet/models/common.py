"""What the models of every area share: column types and constraints."""

from __future__ import annotations

import enum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    Integer,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def enum_column(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


def lock_fields_consistent(status_column: str) -> CheckConstraint:
    """A locked row has a cause, a reason and a time; any other row has none."""
    return CheckConstraint(
        f"({status_column} = 'locked' AND lock_cause IS NOT NULL AND lock_reason IS NOT NULL"
        " AND locked_at IS NOT NULL)"
        f" OR ({status_column} <> 'locked' AND lock_cause IS NULL AND lock_reason IS NULL"
        " AND locked_at IS NULL)",
        name="lock_has_reason",
    )
