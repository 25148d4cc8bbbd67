"""invitations: failure_cause and retry_at (a failed send is shown with its cause and tried again)

Revision ID: a3f9c2e71b58
Revises: d45166ff2395
Create Date: 2026-12-04 22:10:00.000000

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import models.types

# revision identifiers, used by Alembic.
revision = 'a3f9c2e71b58'
down_revision = 'd45166ff2395'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_cause', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('retry_at', models.types.UTCDateTime(), nullable=True))
    # Invitations that failed before this revision were never tried again: they are due now.
    invitations = sa.table('invitations', sa.column('status', sa.String), sa.column('retry_at', models.types.UTCDateTime()))
    op.execute(invitations.update().where(invitations.c.status == 'failed')
               .values(retry_at=datetime.now(timezone.utc)))


def downgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_column('retry_at')
        batch_op.drop_column('failure_cause')
