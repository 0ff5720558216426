repository_names = ["api", "worker"]

# dev's and prod's accounts pull already (accounts in ci.auto.tfvars); add other accounts that must pull here.
reader_account_ids = []

untagged_expire_days   = 7
commit_tag_expire_days = 90
