"""knowledge gaps: who wrote a draft's offered answer; the weekly digest, once per week

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('written_by', sa.String(length=64), nullable=True))
    op.create_table('gapdigest',
    sa.Column('week', sa.String(length=10), nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('ts', sa.String(length=32), nullable=True),
    sa.Column('gaps', sa.Integer(), nullable=False),
    sa.Column('questions', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('week')
    )


def downgrade() -> None:
    op.drop_table('gapdigest')
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.drop_column('written_by')
