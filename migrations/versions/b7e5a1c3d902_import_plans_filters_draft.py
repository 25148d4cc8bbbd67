"""import_plans.filters_draft: the filters step's unsaved rows, so reloading the step keeps them

Revision ID: b7e5a1c3d902
Revises: 8d41c6e2a9f3
Create Date: 2026-12-03 20:35:00.000000

"""
from alembic import op
import sqlalchemy as sa

import models.types

# revision identifiers, used by Alembic.
revision = 'b7e5a1c3d902'
down_revision = '8d41c6e2a9f3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('filters_draft', models.types.JSONType, nullable=True))


def downgrade():
    with op.batch_alter_table('import_plans', schema=None) as batch_op:
        batch_op.drop_column('filters_draft')
