"""channels and their modes, drafts and their outcomes, preference records

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('slackchannel',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('drafts_channel', sa.String(length=32), nullable=True),
    sa.Column('mode_set_by', sa.String(length=64), nullable=True),
    sa.Column('mode_set_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shareable', sa.Boolean(), nullable=False),
    sa.Column('shareable_by', sa.String(length=64), nullable=True),
    sa.Column('shareable_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('channelchange',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('field', sa.String(length=32), nullable=False),
    sa.Column('old', sa.String(length=64), nullable=True),
    sa.Column('new', sa.String(length=64), nullable=True),
    sa.Column('by', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('channelchange', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channelchange_channel_id'), ['channel_id'], unique=False)
    op.create_table('draft',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('question_ts', sa.String(length=32), nullable=False),
    sa.Column('asker', sa.String(length=64), nullable=True),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('model_answer', sa.Text(), nullable=False),
    sa.Column('declined', sa.Boolean(), nullable=False),
    sa.Column('grounding', sa.JSON(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('prompt', sa.JSON(), nullable=False),
    sa.Column('version_name', sa.String(length=128), nullable=True),
    sa.Column('model', sa.String(length=512), nullable=False),
    sa.Column('feedback_id', sa.Integer(), nullable=True),
    sa.Column('drafts_channel', sa.String(length=32), nullable=True),
    sa.Column('card_ts', sa.String(length=32), nullable=True),
    sa.Column('acted_by', sa.String(length=64), nullable=True),
    sa.Column('acted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('discard_reason', sa.String(length=32), nullable=True),
    sa.Column('sent_text', sa.Text(), nullable=True),
    sa.Column('sent_ts', sa.String(length=32), nullable=True),
    sa.Column('edit_chars', sa.Integer(), nullable=True),
    sa.Column('example_id', sa.Integer(), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('followed_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bot_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('human_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['example_id'], ['example.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id', 'question_ts')
    )
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_draft_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_draft_status'), ['status'], unique=False)
    op.create_table('preference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('prompt', sa.JSON(), nullable=False),
    sa.Column('chosen', sa.Text(), nullable=False),
    sa.Column('rejected', sa.Text(), nullable=False),
    sa.Column('version_name', sa.String(length=128), nullable=True),
    sa.Column('asker', sa.String(length=64), nullable=True),
    sa.Column('edited_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['draft.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('preference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preference_draft_id'), ['draft_id'], unique=False)


def downgrade() -> None:
    op.drop_table('preference')
    op.drop_table('draft')
    op.drop_table('channelchange')
    op.drop_table('slackchannel')
