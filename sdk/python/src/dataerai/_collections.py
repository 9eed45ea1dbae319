"""Downloading a collection: the daemon plans the walk (``collection.download_plan``: one folder
per collection, one per asset), then each asset is an ordinary download, followed with the same
progress callback and bars; failures are collected and reported together at the end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

from ._core import Call, JsonObject, TransferRequest
from ._transfers import ProgressCallback
from .errors import CollectionDownloadError, DaemonError
from .models import CollectionAssetDownload, CollectionDownloadResult, DownloadResult

#: What the client hands to :meth:`CollectionDownload.finish`: the plan and, per planned asset,
#: its download's result dict, its error, or ``None`` (no content).
Outcome = Union[JsonObject, DaemonError, None]
#: A planned asset and the download to run for it (``None``: nothing to download).
Planned = Tuple[JsonObject, Optional[TransferRequest[DownloadResult]]]


@dataclass(frozen=True)
class CollectionDownload(Call[CollectionDownloadResult]):
    """``download_collection``: a plan request, then one download per asset with content."""

    plan_params: JsonObject
    on_progress: Optional[ProgressCallback]
    transfer_timeout_s: Optional[float]
    progress: bool
    overwrite: bool

    method = "collection.download_plan"

    def downloads(self, plan: JsonObject) -> List[Planned]:
        """Each planned asset with the download to run for it (``None``: nothing to download)."""
        out: List[Planned] = []
        for item in plan.get("items") or []:
            if not item.get("has_content"):
                out.append((item, None))
                continue
            params: JsonObject = {"asset_id": item["asset_id"], "dest_dir": item["local_path"]}
            if self.overwrite:
                params["overwrite"] = True
            request = TransferRequest(
                "asset.download",
                params,
                DownloadResult.from_json,
                self.on_progress,
                self.transfer_timeout_s,
                self.progress,
            )
            out.append((item, request))
        return out

    def finish(self, raw: Any) -> CollectionDownloadResult:
        plan, outcomes = raw
        assets: List[CollectionAssetDownload] = []
        failed: List[Tuple[str, str, DaemonError]] = []
        for item, outcome in outcomes:
            if isinstance(outcome, DaemonError):
                failed.append((str(item["asset_id"]), str(item.get("title", "")), outcome))
                continue
            assets.append(
                CollectionAssetDownload(
                    asset_id=str(item["asset_id"]),
                    title=str(item.get("title", "")),
                    collection_id=str(item.get("collection_id", "")),
                    local_path=Path(item["local_path"]),
                    result=DownloadResult.from_json(outcome) if outcome is not None else None,
                )
            )
        result = CollectionDownloadResult(
            collection_id=str(plan["collection_id"]),
            local_path=Path(plan["local_path"]),
            assets=assets,
        )
        if failed:
            names = ", ".join(f"{title!r} ({asset_id}: {err.code})" for asset_id, title, err in failed)
            raise CollectionDownloadError(
                failed[0][2].code,
                f"{len(failed)} of {len(outcomes)} assets of collection {result.collection_id} could "
                f"not be downloaded: {names}; the others are in {result.local_path} (call "
                "download_collection again to fetch only what is missing)",
                failed,
                result,
            )
        return result
