repository_names = ["api", "worker"]

# Add the workload account ids here if the clusters live in other accounts.
reader_account_ids = []

untagged_expire_days   = 7
commit_tag_expire_days = 90
