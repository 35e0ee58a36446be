"""preference records of every kind (edited, discarded then answered, corrected), with their question, audience and
pair; their copies in dataset snapshots

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('preference', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), nullable=False, server_default='edited'))
        batch_op.add_column(sa.Column('feedback_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('audience', sa.String(length=16), nullable=False, server_default='unknown'))
        batch_op.add_column(sa.Column('question', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('pair_key', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_preference_feedback_id'), ['feedback_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_preference_channel_id'), ['channel_id'], unique=False)
        batch_op.create_foreign_key('fk_preference_feedback_id_feedback', 'feedback', ['feedback_id'], ['id'])
    with op.batch_alter_table('datasetsnapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('n_preferences', sa.Integer(), nullable=False, server_default='0'))
    op.create_table('snapshotpreference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('preference_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=16), nullable=False),
    sa.Column('prompt', sa.JSON(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('chosen', sa.Text(), nullable=False),
    sa.Column('rejected', sa.Text(), nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_id'], ['datasetsnapshot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('snapshot_id', 'preference_id')
    )
    with op.batch_alter_table('snapshotpreference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshotpreference_preference_id'), ['preference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_snapshotpreference_snapshot_id'), ['snapshot_id'], unique=False)

    # Existing records are all edits of drafts: their question and the pair the sent text became come from the draft,
    # their audience from the channel's kind where ftbot knows it (else unknown, which counts as private: nothing
    # becomes more visible by migrating).
    op.execute("UPDATE preference SET question = COALESCE((SELECT draft.question FROM draft "
               "WHERE draft.id = preference.draft_id), '')")
    op.execute("UPDATE preference SET pair_key = (SELECT example.source_key FROM draft JOIN example "
               "ON example.id = draft.example_id WHERE draft.id = preference.draft_id)")
    op.execute("UPDATE preference SET audience = COALESCE((SELECT slackchannel.kind FROM slackchannel "
               "WHERE slackchannel.id = preference.channel_id), 'unknown')")


def downgrade() -> None:
    with op.batch_alter_table('snapshotpreference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snapshotpreference_snapshot_id'))
        batch_op.drop_index(batch_op.f('ix_snapshotpreference_preference_id'))
    op.drop_table('snapshotpreference')
    with op.batch_alter_table('datasetsnapshot', schema=None) as batch_op:
        batch_op.drop_column('n_preferences')
    with op.batch_alter_table('preference', schema=None) as batch_op:
        batch_op.drop_constraint('fk_preference_feedback_id_feedback', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_preference_channel_id'))
        batch_op.drop_index(batch_op.f('ix_preference_feedback_id'))
        batch_op.drop_column('pair_key')
        batch_op.drop_column('question')
        batch_op.drop_column('audience')
        batch_op.drop_column('feedback_id')
        batch_op.drop_column('kind')
