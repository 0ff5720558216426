# Who the CI roles trust (see ci.tf): this repository's workflows. One AWS account per environment, each with the
# state bucket of pyproject.toml's [tool.deployctl.environments.NAME] (tests/lab/test_iam.py checks they agree).
github_repository = "acme/api"

accounts = {
  shared = { id = "123456789012", state_bucket = "acme-api-tfstate-shared" }
  dev    = { id = "234567890123", state_bucket = "acme-api-tfstate-dev" }
  prod   = { id = "345678901234", state_bucket = "acme-api-tfstate-prod" }
}
