"""Exceptions raised by the Dataerai SDK.

Every error the daemon reports carries a stable, machine-readable code (``ERR_NOT_FOUND``,
``ERR_PERMISSION_DENIED``, …); check ``err.code`` rather than parsing messages::

    from dataerai import DaemonError

    try:
        client.create_relationship(a, b, relationship_type="derived_from")
    except DaemonError as err:
        if err.code != "ERR_RELATIONSHIP_EXISTS":
            raise

Or catch the subclass for the code you care about (unknown codes stay a plain
:class:`DaemonError`)::

    from dataerai import NotFoundError, RelationshipExistsError

    try:
        client.create_relationship(a, b, relationship_type="derived_from")
    except RelationshipExistsError:
        pass

Three families:

* :class:`DaemonError` – the daemon (or the server behind it) refused or failed a request. One
  subclass per code: :class:`NotFoundError`, :class:`PermissionDeniedError`,
  :class:`AuthRequiredError`, :class:`QuotaExceededError`, :class:`RelationshipExistsError`,
  :class:`IntegrityError`, :class:`ServerUnreachableError`, :class:`InvalidInputError`.
  Bad arguments are caught before any request: :class:`InvalidInputError` is also a
  :class:`ValueError`, and :class:`InvalidArgumentTypeError` (one of its subclasses) also a
  :class:`TypeError`.
* :class:`DaemonTimeoutError` – a request or transfer took longer than allowed. It is both a
  :class:`DaemonError` (code ``ERR_TIMEOUT``) and a built-in :class:`TimeoutError`.
* The built-in :class:`ConnectionError` – the daemon went away (or could not be reached).
  :class:`DaemonUnavailableError` is the subclass raised when no daemon could be reached or
  started; it also carries a ``code`` (``ERR_DAEMON_UNAVAILABLE``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Type

__all__ = [
    "ERR_AUTH_REQUIRED",
    "ERR_CANCELLED",
    "ERR_CONFLICT",
    "ERR_DAEMON_UNAVAILABLE",
    "ERR_FILE_EXISTS",
    "ERR_INTEGRITY",
    "ERR_INTERNAL",
    "ERR_INVALID_INPUT",
    "ERR_NOT_FOUND",
    "ERR_NO_SPACE",
    "ERR_PERMISSION_DENIED",
    "ERR_QUOTA_EXCEEDED",
    "ERR_RELATIONSHIP_EXISTS",
    "ERR_SERVER_UNREACHABLE",
    "ERR_TIMEOUT",
    "AuthRequiredError",
    "DaemonError",
    "DaemonTimeoutError",
    "DaemonUnavailableError",
    "LocalFileExistsError",
    "IntegrityError",
    "InvalidArgumentTypeError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RelationshipExistsError",
    "ServerUnreachableError",
    "error_for_code",
    "CollectionDownloadError",
]

# Codes shared with the daemon and server (crates/dataerai-proto/src/error.rs).
ERR_AUTH_REQUIRED = "ERR_AUTH_REQUIRED"
ERR_PERMISSION_DENIED = "ERR_PERMISSION_DENIED"
ERR_NOT_FOUND = "ERR_NOT_FOUND"
ERR_INVALID_INPUT = "ERR_INVALID_INPUT"
ERR_QUOTA_EXCEEDED = "ERR_QUOTA_EXCEEDED"
ERR_RELATIONSHIP_EXISTS = "ERR_RELATIONSHIP_EXISTS"
ERR_CONFLICT = "ERR_CONFLICT"
ERR_INTEGRITY = "ERR_INTEGRITY"
ERR_SERVER_UNREACHABLE = "ERR_SERVER_UNREACHABLE"
ERR_CANCELLED = "ERR_CANCELLED"
ERR_FILE_EXISTS = "ERR_FILE_EXISTS"
ERR_NO_SPACE = "ERR_NO_SPACE"
ERR_INTERNAL = "ERR_INTERNAL"

# Codes that only the SDK produces.
ERR_TIMEOUT = "ERR_TIMEOUT"
ERR_DAEMON_UNAVAILABLE = "ERR_DAEMON_UNAVAILABLE"


class DaemonError(Exception):
    """The daemon answered a request with an error.

    Attributes:
        code: Stable error code such as ``"ERR_NOT_FOUND"``.
        message: Human-readable explanation, usually saying what to do next.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> Tuple[Any, ...]:
        # Keeps errors picklable (process pools) despite the keyword-only constructors below.
        return (_rebuild, (type(self), self.code, self.message, dict(self.__dict__)))


def _rebuild(cls: Type[DaemonError], code: str, message: str, state: Dict[str, Any]) -> DaemonError:
    err = cls.__new__(cls)
    DaemonError.__init__(err, code, message)
    err.__dict__.update(state)
    return err


class DaemonTimeoutError(DaemonError, TimeoutError):
    """A request or a transfer did not finish in time (``code == "ERR_TIMEOUT"``).

    When a *transfer* wait times out the transfer itself keeps running inside the daemon;
    ``transfer_id`` says which one, so it can be watched or cancelled later.
    """

    def __init__(self, message: str, *, transfer_id: str | None = None) -> None:
        super().__init__(ERR_TIMEOUT, message)
        self.transfer_id = transfer_id


class DaemonUnavailableError(DaemonError, ConnectionError):
    """No daemon answers on the socket and none could be started (or the client is closed)."""

    def __init__(self, message: str) -> None:
        super().__init__(ERR_DAEMON_UNAVAILABLE, message)


# The class for each code, filled in by the classes below as they are defined.
_BY_CODE: Dict[str, Type[_CodedError]] = {}


class _CodedError(DaemonError):
    """A :class:`DaemonError` whose class fixes the code (constructed from the message alone).

    A subclass names its code once, ``class NotFoundError(_CodedError, code=ERR_NOT_FOUND)``,
    and :func:`error_for_code` then raises it for that code.
    """

    CODE: ClassVar[str] = ERR_INTERNAL

    def __init_subclass__(cls, *, code: Optional[str] = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.CODE = code
            _BY_CODE[code] = cls

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE, message)


class NotFoundError(_CodedError, code=ERR_NOT_FOUND):
    """``ERR_NOT_FOUND``: no such asset, project, transfer, … (or you may not know it exists)."""


class PermissionDeniedError(_CodedError, code=ERR_PERMISSION_DENIED):
    """``ERR_PERMISSION_DENIED``: signed in, but not allowed to do this."""


class AuthRequiredError(_CodedError, code=ERR_AUTH_REQUIRED):
    """``ERR_AUTH_REQUIRED``: the daemon is not signed in (run ``dataerai auth login``)."""


class QuotaExceededError(_CodedError, code=ERR_QUOTA_EXCEEDED):
    """``ERR_QUOTA_EXCEEDED``: the owner's storage quota would be exceeded."""


class RelationshipExistsError(_CodedError, code=ERR_RELATIONSHIP_EXISTS):
    """``ERR_RELATIONSHIP_EXISTS``: an identical relationship is already recorded."""


class IntegrityError(_CodedError, code=ERR_INTEGRITY):
    """``ERR_INTEGRITY``: bytes did not match their checksum (nothing was published)."""


class LocalFileExistsError(_CodedError, FileExistsError, code=ERR_FILE_EXISTS):
    """``ERR_FILE_EXISTS``: a download would replace a different local file; nothing was
    written (pass ``overwrite=True`` to replace it). Also a built-in :class:`FileExistsError`."""


class ServerUnreachableError(_CodedError, code=ERR_SERVER_UNREACHABLE):
    """``ERR_SERVER_UNREACHABLE``: the daemon could not reach the Dataerai server."""


class InvalidInputError(_CodedError, ValueError, code=ERR_INVALID_INPUT):
    """``ERR_INVALID_INPUT``: a bad argument — found by the SDK before sending anything, or by
    the daemon/server. Also a :class:`ValueError`."""


class InvalidArgumentTypeError(InvalidInputError, TypeError):
    """An argument of the wrong type, found before any request. Also a :class:`TypeError`."""


def error_for_code(code: str, message: str) -> DaemonError:
    """The :class:`DaemonError` subclass for ``code`` (a plain one for codes without a class)."""
    if code == ERR_TIMEOUT:
        return DaemonTimeoutError(message)
    if code == ERR_DAEMON_UNAVAILABLE:
        return DaemonUnavailableError(message)
    cls = _BY_CODE.get(code)
    return cls(message) if cls is not None else DaemonError(code, message)


class CollectionDownloadError(DaemonError):
    """Some assets of :meth:`~dataerai.DataeraiClient.download_collection` could not be
    downloaded; the others are complete on disk (running the call again skips them).

    ``code`` is the first failure's code; ``failed`` lists ``(asset_id, title, error)`` of every
    failed asset and ``result`` (a :class:`~dataerai.CollectionDownloadResult`) the assets
    that were downloaded.
    """

    def __init__(self, code: str, message: str, failed: Any = (), result: Any = None) -> None:
        super().__init__(code, message)
        self.failed = list(failed)
        self.result = result
