-- Client-supplied idempotency keys (`idempotency_key` of asset.upload,
-- asset.upload_many items and asset.download): a repeated call with the same
-- key attaches to the transfer it started instead of starting another one.
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    transfer_id TEXT NOT NULL,
    PRIMARY KEY (owner, idempotency_key)
);
