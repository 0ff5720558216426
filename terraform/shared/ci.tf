# The OIDC roles the GitHub workflows assume (see ../modules/ci-roles and ../README.md "CI roles").
module "ci_roles" {
  source = "../modules/ci-roles"

  project           = var.project
  github_repository = var.github_repository
  main_branch       = var.main_branch
  shared_branch     = var.shared_branch
  state_bucket      = var.state_bucket
  repository_arns   = values(module.registry.repository_arns)
  environments      = var.ci_environments
  oidc_provider_arn = var.github_oidc_provider_arn
}
