"""The pure sync engine: plan value objects, mapping, validation, identity, cursor and run().

No Flask, no SQLAlchemy, no redis, no HTTP. Interfaces are described in full below once the
engine lands; ``sync.ids`` and ``sync.validate`` are stable and safe to import now.
"""
