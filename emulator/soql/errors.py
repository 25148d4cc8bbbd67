"""SOQL errors in the shape Salesforce reports them (code, message, HTTP status)."""

# Salesforce echoes up to this many characters of the offending line on each side of the caret.
_ECHO_WINDOW = 35


class SoqlError(Exception):
    def __init__(self, error_code: str, message: str, status: int = 400):
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.status = status

    def to_json(self) -> list[dict]:
        return [{"message": self.message, "errorCode": self.error_code}]


def positioned(text: str, line: int, column: int, detail: str) -> str:
    """The message body Salesforce builds: line fragment, caret, position, detail."""
    lines = text.split("\n")
    row = lines[line - 1] if 0 < line <= len(lines) else ""
    pos = max(column - 1, 0)
    start = max(0, pos - _ECHO_WINDOW)
    fragment = row[start:pos + _ECHO_WINDOW]
    return f"\n{fragment}\n{' ' * (pos - start)}^\nERROR at Row:{line}:Column:{column}\n{detail}"


def error_at(code: str, text: str, pos, detail: str) -> SoqlError:
    """pos is a (line, column) pair or None (then the message carries no echo)."""
    if pos is None:
        return SoqlError(code, detail)
    return SoqlError(code, positioned(text, pos[0], pos[1], detail))


def malformed(text: str, pos, detail: str) -> SoqlError:
    return error_at("MALFORMED_QUERY", text, pos, detail)
