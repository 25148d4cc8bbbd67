"""skipped_sources: the plan's remembered skips (a record skipped as not importable, read again
with the same source hash, is not validated again)

Revision ID: d45166ff2395
Revises: 5e2b8c1d7f40
Create Date: 2026-12-04 17:20:47.921891

"""
from alembic import op
import sqlalchemy as sa
import models.types

# revision identifiers, used by Alembic.
revision = 'd45166ff2395'
down_revision = '5e2b8c1d7f40'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('skipped_sources',
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.String(length=18), nullable=False),
    sa.Column('object_name', sa.String(length=120), nullable=False),
    sa.Column('record_id', sa.String(length=18), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('source_hash', sa.String(length=64), nullable=False),
    sa.Column('rules', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('email_key', sa.String(length=320), nullable=True),
    sa.Column('phone_key', sa.String(length=48), nullable=True),
    sa.Column('flags', models.types.JSONType, nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('skipped_at', models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['import_plans.id'], name=op.f('fk_skipped_sources_plan_id_import_plans'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['sync_runs.id'], name=op.f('fk_skipped_sources_run_id_sync_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_skipped_sources_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'org_id', 'object_name', 'record_id', 'plan_id', name=op.f('pk_skipped_sources'))
    )
    with op.batch_alter_table('skipped_sources', schema=None) as batch_op:
        batch_op.create_index('ix_skipped_sources_plan', ['plan_id'], unique=False)


def downgrade():
    with op.batch_alter_table('skipped_sources', schema=None) as batch_op:
        batch_op.drop_index('ix_skipped_sources_plan')

    op.drop_table('skipped_sources')