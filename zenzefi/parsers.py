"""JSON in, bounded: a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE is 413, one nested deeper than MAX_DEPTH 400.

Python's ``json`` recurses once per level, so a body of a few kilobytes of ``[``
raises RecursionError (a 500) instead of a parse error. Our documents are two
or three levels deep and the providers' notifications a few more; MAX_DEPTH
leaves room for both.
"""

import io
import json

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "request_too_large"

    def __init__(self):
        super().__init__(too_large_detail())


def too_large_detail() -> str:
    return f"Request body too large (limit {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)"


class JSONTooDeep(ValueError):
    def __init__(self):
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels")


def too_deep(value) -> bool:
    """Whether ``value`` (parsed JSON) nests lists and objects deeper than MAX_DEPTH. Iterative: no recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _bounded(load):
    """Run a JSON ``load()``; JSONTooDeep instead of RecursionError or a document deeper than MAX_DEPTH."""
    try:
        value = load()
    except RecursionError:
        raise JSONTooDeep() from None
    if isinstance(value, dict | list) and too_deep(value):
        raise JSONTooDeep()
    return value


def json_loads(data: bytes | str):
    """``json.loads`` that raises JSONTooDeep (a ValueError) for documents nested deeper than MAX_DEPTH."""
    return _bounded(lambda: json.loads(data))


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, reading at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes and refusing deep nesting.

    DRF reads the request stream itself, so Django's own DATA_UPLOAD_MAX_MEMORY_SIZE check never runs for it.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge()
        parse = super().parse
        try:
            return _bounded(lambda: parse(io.BytesIO(raw), media_type, parser_context))
        except JSONTooDeep as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
