"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasetsnapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('n_examples', sa.Integer(), nullable=False),
    sa.Column('n_train', sa.Integer(), nullable=False),
    sa.Column('n_validation', sa.Integer(), nullable=False),
    sa.Column('val_percent', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('datasetsnapshot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasetsnapshot_content_hash'), ['content_hash'], unique=False)

    op.create_table('example',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_key', sa.String(length=255), nullable=False),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('source', sa.JSON(), nullable=False),
    sa.Column('labelled_by', sa.String(length=64), nullable=True),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedup_key'),
    sa.UniqueConstraint('source_key')
    )
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_example_status'), ['status'], unique=False)

    op.create_table('seenevent',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user', sa.String(length=64), nullable=True),
    sa.Column('version_name', sa.String(length=128), nullable=True),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('rating', sa.String(length=8), nullable=False),
    sa.Column('correction', sa.Text(), nullable=True),
    sa.Column('source', sa.JSON(), nullable=False),
    sa.Column('example_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['example_id'], ['example.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('snapshotexample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.Integer(), nullable=False),
    sa.Column('source_key', sa.String(length=255), nullable=False),
    sa.Column('side', sa.String(length=16), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['example_id'], ['example.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['datasetsnapshot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('snapshot_id', 'example_id')
    )
    with op.batch_alter_table('snapshotexample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshotexample_example_id'), ['example_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_snapshotexample_snapshot_id'), ['snapshot_id'], unique=False)

    op.create_table('trainingjob',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['snapshot_id'], ['datasetsnapshot.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('trainingjob', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trainingjob_status'), ['status'], unique=False)

    op.create_table('modelversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('snapshot_id', sa.Integer(), nullable=True),
    sa.Column('base_model', sa.String(length=512), nullable=False),
    sa.Column('adapter_path', sa.String(length=1024), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('below_deployed', sa.Boolean(), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['trainingjob.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['datasetsnapshot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_modelversion_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_modelversion_status'))

    op.drop_table('modelversion')
    with op.batch_alter_table('trainingjob', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trainingjob_status'))

    op.drop_table('trainingjob')
    with op.batch_alter_table('snapshotexample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snapshotexample_snapshot_id'))
        batch_op.drop_index(batch_op.f('ix_snapshotexample_example_id'))

    op.drop_table('snapshotexample')
    op.drop_table('feedback')
    op.drop_table('seenevent')
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_example_status'))

    op.drop_table('example')
    with op.batch_alter_table('datasetsnapshot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasetsnapshot_content_hash'))

    op.drop_table('datasetsnapshot')
