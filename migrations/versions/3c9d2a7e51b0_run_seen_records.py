"""run_seen_records: the record IDs a running sync read (the leaving pass's set, out of memory)

Revision ID: 3c9d2a7e51b0
Revises: f7e03b8f4ead
Create Date: 2026-12-03 20:15:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '3c9d2a7e51b0'
down_revision = 'f7e03b8f4ead'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('run_seen_records',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.String(length=18), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['sync_runs.id'], name=op.f('fk_run_seen_records_run_id_sync_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'record_id', name=op.f('pk_run_seen_records'))
    )


def downgrade():
    op.drop_table('run_seen_records')
