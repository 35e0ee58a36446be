"""a training job's message in the approvals channel

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trainingjob', schema=None) as batch_op:
        batch_op.add_column(sa.Column('slack_channel', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('slack_ts', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('slack_done', sa.Boolean(), nullable=False, server_default=sa.false()))
    # Jobs that ended before the bot announced anything are not announced now.
    op.execute("UPDATE trainingjob SET slack_done = true WHERE status IN ('succeeded', 'failed', 'cancelled')")


def downgrade() -> None:
    with op.batch_alter_table('trainingjob', schema=None) as batch_op:
        batch_op.drop_column('slack_done')
        batch_op.drop_column('slack_ts')
        batch_op.drop_column('slack_channel')
