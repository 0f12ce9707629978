"""Write-once objects under keys (local filesystem, memory, S3). Must not know blobs or packs."""
