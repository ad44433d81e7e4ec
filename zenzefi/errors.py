"""Domain errors shared by every app.

Services raise these; the API's exception handler turns them into a JSON
``{"detail": ...}`` with the error's status, and pages show them as messages.
"""


class DomainError(Exception):
    status_code = 400
    default_detail = "Bad request"

    def __init__(self, detail: str | None = None, *, field: str | None = None):
        self.detail = detail or self.default_detail
        self.field = field
        super().__init__(self.detail)


class NotFound(DomainError):
    status_code = 404
    default_detail = "Not found"


class Conflict(DomainError):
    status_code = 409
    default_detail = "Conflict"


class RateLimited(DomainError):
    status_code = 429
    default_detail = "Too many requests"

    def __init__(self, detail: str | None = None, *, limit: int, retry_after: int, reset: int):
        super().__init__(detail)
        self.limit = limit
        self.retry_after = retry_after
        self.reset = reset

    def headers(self) -> dict[str, str]:
        return {
            "Retry-After": str(self.retry_after),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(self.reset),
        }
