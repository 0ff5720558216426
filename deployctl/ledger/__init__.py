"""The deploy ledger (append-only, S3 Object Lock) and the environment lock (a lease, fenced)."""
