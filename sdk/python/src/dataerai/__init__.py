"""Python SDK for the Dataerai transfer daemon.

Move scientific data between your machine and a Dataerai server, attach metadata and record
provenance, from a script, a thread pool or a notebook::

    from dataerai import DataeraiClient

    with DataeraiClient() as client:
        print(client.auth_status().user_email)

or, inside an event loop (a notebook), :class:`AsyncDataeraiClient`::

    async with AsyncDataeraiClient() as client:
        print((await client.auth_status()).user_email)

The SDK talks only to the local ``dataerai`` daemon over its Unix socket (starting it when
needed); the daemon holds the credentials and moves the bytes.
"""

import importlib.metadata

from .async_client import AsyncDataeraiClient
from .client import DataEraiClient, DataeraiClient, ProgressCallback

# The collection tree.
from .errors import (
    AuthRequiredError,
    CollectionDownloadError,
    DaemonError,
    DaemonTimeoutError,
    DaemonUnavailableError,
    IntegrityError,
    InvalidArgumentTypeError,
    InvalidInputError,
    LocalFileExistsError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RelationshipExistsError,
    ServerUnreachableError,
)
from .models import (
    AssetMetadata,
    AuthStatus,
    Collection,
    CollectionAssetDownload,
    CollectionDownloadResult,
    CollectionPath,
    ContentVersion,
    DownloadedFile,
    DownloadResult,
    ErrorInfo,
    Lineage,
    LineageEdge,
    LineageNode,
    ListPage,
    ProgressEvent,
    Project,
    ProjectMember,
    ProvenanceExport,
    Relationship,
    RoCrateExport,
    SearchResult,
    Transfer,
    UploadedFile,
    UploadItem,
    UploadManyResult,
    UploadResult,
    VersionFile,
)

try:
    # The wheel's version, which maturin takes from the Cargo workspace: the bundled `dataerai`
    # binary (`dataerai --version`) carries the same number.
    __version__ = importlib.metadata.version("dataerai-sdk")
except importlib.metadata.PackageNotFoundError:  # imported from a source tree (`make venv`)
    __version__ = "0+source"

__all__ = [
    "AssetMetadata",
    "AsyncDataeraiClient",
    "AuthRequiredError",
    "AuthStatus",
    "ContentVersion",
    "DaemonError",
    "DaemonTimeoutError",
    "DaemonUnavailableError",
    "DataEraiClient",
    "DataeraiClient",
    "DownloadResult",
    "DownloadedFile",
    "ErrorInfo",
    "IntegrityError",
    "InvalidArgumentTypeError",
    "InvalidInputError",
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "ListPage",
    "LocalFileExistsError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProgressCallback",
    "ProgressEvent",
    "Project",
    "ProjectMember",
    "ProvenanceExport",
    "QuotaExceededError",
    "Relationship",
    "RoCrateExport",
    "SearchResult",
    "RelationshipExistsError",
    "ServerUnreachableError",
    "Transfer",
    "UploadItem",
    "UploadManyResult",
    "UploadResult",
    "UploadedFile",
    "VersionFile",
    "__version__",
    # The collection tree.
    "Collection",
    "CollectionAssetDownload",
    "CollectionDownloadError",
    "CollectionDownloadResult",
    "CollectionPath",
]
