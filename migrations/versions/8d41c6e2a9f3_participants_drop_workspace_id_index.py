"""participants: drop ix_participants_workspace_id (a prefix of the three composite indexes)

The single-column index on participants.workspace_id adds nothing that (workspace_id, email_key),
(workspace_id, phone_key) and (workspace_id, status, id) do not already give (the foreign key's
cascade and every per-workspace query use their leading column), and SQLite's planner picked it
for ``WHERE workspace_id = ? AND phone_key IN (...) ORDER BY id`` (the preview's and the sync's
lookup): a walk over every participant of the workspace (77 ms at 100k) instead of the
(workspace_id, phone_key) index (0.3 ms).

Revision ID: 8d41c6e2a9f3
Revises: 3c9d2a7e51b0
Create Date: 2026-12-03 20:20:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '8d41c6e2a9f3'
down_revision = '3c9d2a7e51b0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participants_workspace_id'))


def downgrade():
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participants_workspace_id'), ['workspace_id'], unique=False)
