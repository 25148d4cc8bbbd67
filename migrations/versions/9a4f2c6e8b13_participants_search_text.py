"""participants: search_text, the searched columns lower-cased in one generated column

The pool's search tested every word with six ILIKEs a row (name, email, company, phone); a
search as common as a tenth of the pool walked ~40,000 rows for its page and ~50,000 for its
count on PostgreSQL (180 ms a request at 100k participants). One LIKE on search_text does the
same work several times faster. It is a stored generated column: the database fills it for the
rows already there (rewriting the table once; on SQLite, whose ALTER TABLE cannot add one, by
copying the table) and keeps it right on every INSERT and UPDATE, whoever writes. The trigram index moves from the six columns to search_text (PostgreSQL only).

Revision ID: 9a4f2c6e8b13
Revises: a3f9c2e71b58
Create Date: 2026-12-04 22:15:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '9a4f2c6e8b13'
down_revision = 'a3f9c2e71b58'
branch_labels = None
depends_on = None

COLUMNS = ("first_name", "last_name", "email", "company", "phone_raw", "phone_e164")
# models.participants.SEARCH_TEXT_SQL as of this revision.
SEARCH_TEXT_SQL = "lower(" + " || ' ' || ".join(f"coalesce({name}, '')" for name in COLUMNS) + ")"


def _column():
    return sa.Column('search_text', sa.Text(), sa.Computed(SEARCH_TEXT_SQL, persisted=True), nullable=True)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        # SQLite's ALTER TABLE cannot add a stored generated column: the table is copied.
        with op.batch_alter_table('participants', recreate="always") as batch_op:
            batch_op.add_column(_column())
        return
    op.add_column('participants', _column())
    op.drop_index("ix_participants_search", table_name="participants", postgresql_using="gin")
    op.create_index("ix_participants_search_text", "participants", ["search_text"], unique=False,
                    postgresql_using="gin", postgresql_ops={"search_text": "gin_trgm_ops"})


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_participants_search_text", table_name="participants", postgresql_using="gin")
        op.create_index("ix_participants_search", "participants", list(COLUMNS), unique=False,
                        postgresql_using="gin", postgresql_ops={name: "gin_trgm_ops" for name in COLUMNS})
    with op.batch_alter_table('participants') as batch_op:
        batch_op.drop_column('search_text')
