# Who the CI roles trust (see ci.tf): this repository's workflows, and the state bucket of pyproject.toml.
github_repository = "acme/api"
state_bucket      = "acme-api-tfstate"
