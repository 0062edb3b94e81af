"""Ids with every character that PostgreSQL's COPY (text and CSV) treats
specially, for the tests that load embedpipe's output into a database:
tests/e2e/test_postgres.py and tests/e2e/test_pgvector.py."""

import json

# As JSON strings: backslashes, tab, newline, CR, quotes, commas, non-ASCII,
# and the texts COPY reads as NULL (\N) or as the end of data (\.).
STRING_IDS = [
    "plain", "back\\slash", "two\\\\back", "tab\there", "new\nline", "cr\rhere", "crlf\r\n",
    'quote"d', "it's", "comma,sep", "caf\u00e9 \u6771\u4eac \U0001f469\u200d\U0001f4bb",
    "\\N", "\\.", "", " spaced ", "semi;colon", "{brace,s}", "[x]", "\\t literal",
    "\u2028line sep", '"\\",\t\n\r all', "\x01\x1f ctrl", "\\", "NULL",
]
# As JSON numbers, written as they are.
NUMBER_IDS = ["42", "1.50", "-0", "12345678901234567890", "1e3"]


def all_id_texts():
    """Every id above as the JSON text of an input line's "id"."""
    return [json.dumps(s, ensure_ascii=False) for s in STRING_IDS] + NUMBER_IDS


def id_value(id_text):
    """The id as PostgreSQL must store it: a string's text, a number's text."""
    return json.loads(id_text) if id_text.startswith('"') else id_text
