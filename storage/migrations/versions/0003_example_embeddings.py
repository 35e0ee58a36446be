"""stored embeddings of approved examples (the retrieval index)

The index on example (status, updated_at) makes the index's before-every-search check cheap.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exampleembedding',
    sa.Column('example_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['example_id'], ['example.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('example_id')
    )
    with op.batch_alter_table('exampleembedding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exampleembedding_model'), ['model'], unique=False)
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.create_index('ix_example_status_updated_at', ['status', 'updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_index('ix_example_status_updated_at')
    with op.batch_alter_table('exampleembedding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exampleembedding_model'))

    op.drop_table('exampleembedding')
