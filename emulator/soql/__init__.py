"""The emulator's SOQL engine: parse(text) -> Query, execute(query, ds) -> QueryResult."""
from emulator.soql.datasource import DataSource, MemoryDataSource
from emulator.soql.engine import QueryResult, execute
from emulator.soql.errors import SoqlError
from emulator.soql.nodes import Query
from emulator.soql.parser import parse

__all__ = ["DataSource", "MemoryDataSource", "Query", "QueryResult", "SoqlError", "execute", "parse"]
