"""every example knows its audience; version flags; why a job exists; the erasure audit

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('audience', sa.String(length=16), nullable=False, server_default='unknown'))
        batch_op.create_index(batch_op.f('ix_example_channel_id'), ['channel_id'], unique=False)
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flags', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('trainingjob', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))
    op.create_table('erasure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_hash', sa.String(length=64), nullable=False),
    sa.Column('by', sa.String(length=64), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('erasure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasure_user_hash'), ['user_hash'], unique=False)

    # Existing examples: the channel from their source, its kind where ftbot knows the channel; else unknown
    # (which counts as private: nothing becomes more visible by migrating).
    conn = op.get_bind()
    kinds = dict(conn.execute(sa.text("SELECT id, kind FROM slackchannel")).all())
    rows = conn.execute(sa.text("SELECT id, source FROM example")).all()
    update = sa.text("UPDATE example SET channel_id = :channel, audience = :audience WHERE id = :id")
    for ex_id, source in rows:
        if isinstance(source, str):
            try:
                source = json.loads(source)
            except ValueError:
                source = {}
        channel = (source or {}).get("channel_id") if isinstance(source, dict) else None
        channel = channel if isinstance(channel, str) and len(channel) <= 32 else None
        conn.execute(update, {"channel": channel, "audience": kinds.get(channel, "unknown"), "id": ex_id})


def downgrade() -> None:
    op.drop_table('erasure')
    with op.batch_alter_table('trainingjob', schema=None) as batch_op:
        batch_op.drop_column('reason')
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_column('flags')
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_example_channel_id'))
        batch_op.drop_column('audience')
        batch_op.drop_column('channel_id')
