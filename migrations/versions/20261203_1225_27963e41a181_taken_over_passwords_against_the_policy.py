"""taken-over passwords against the policy: unchecked (a hash) or weak

Revision ID: 27963e41a181
Revises: dea0f078265e
Create Date: 2026-12-03 12:25:43.411629+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "27963e41a181"
down_revision: str | Sequence[str] | None = "dea0f078265e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "taken_over_password",
                sa.Enum(
                    "unchecked",
                    "weak",
                    name="taken_over_password",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    # Without the column, such a password must still not pass unchanged: the older
    # version asks for a change of any password marked so.
    op.execute(
        sa.text(
            "UPDATE users SET password_must_change = true WHERE taken_over_password IS NOT NULL"
        )
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("taken_over_password")
