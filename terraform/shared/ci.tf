# The OIDC roles the GitHub workflows assume: one module instance per account (one AWS account per environment),
# each created through that account's ci-admin role (providers.tf). See ../modules/ci-roles and ../README.md.
# A new environment is a new account: a provider alias, a module block here, an entry of var.accounts.

locals {
  ci_common = {
    project           = var.project
    github_repository = var.github_repository
    main_branch       = var.main_branch
    shared_branch     = var.shared_branch
  }
}

module "ci_shared" {
  source    = "../modules/ci-roles"
  providers = { aws = aws.ci_shared }

  project           = local.ci_common.project
  github_repository = local.ci_common.github_repository
  main_branch       = local.ci_common.main_branch
  shared_branch     = local.ci_common.shared_branch

  environment            = "shared"
  account_id             = var.accounts["shared"].id
  state_bucket           = var.accounts["shared"].state_bucket
  terraform_only         = true
  build_role             = true
  repository_arns        = values(module.registry.repository_arns)
  ci_admin_roles         = values(local.ci_admin)
  extra_policy_json      = var.accounts["shared"].extra_policy_json
  boundary_extra_actions = var.accounts["shared"].boundary_extra_actions
  oidc_provider_arn      = var.accounts["shared"].oidc_provider_arn
}

# dev: deployed from main; its reader role lets prod's deploy role read dev's evidence (ledger, cluster).
module "ci_dev" {
  source    = "../modules/ci-roles"
  providers = { aws = aws.ci_dev }

  project           = local.ci_common.project
  github_repository = local.ci_common.github_repository
  main_branch       = local.ci_common.main_branch
  shared_branch     = local.ci_common.shared_branch

  environment            = "dev"
  account_id             = var.accounts["dev"].id
  state_bucket           = var.accounts["dev"].state_bucket
  repository_arns        = values(module.registry.repository_arns)
  reader_principals      = [module.ci_prod.role_arns["prod-deploy"]]
  extra_policy_json      = var.accounts["dev"].extra_policy_json
  boundary_extra_actions = var.accounts["dev"].boundary_extra_actions
  oidc_provider_arn      = var.accounts["dev"].oidc_provider_arn
}

# prod: promoted into from release tags, changed only by a reviewed plan's apply.
module "ci_prod" {
  source    = "../modules/ci-roles"
  providers = { aws = aws.ci_prod }

  project           = local.ci_common.project
  github_repository = local.ci_common.github_repository
  main_branch       = local.ci_common.main_branch
  shared_branch     = local.ci_common.shared_branch

  environment             = "prod"
  account_id              = var.accounts["prod"].id
  state_bucket            = var.accounts["prod"].state_bucket
  protected               = true
  repository_arns         = [for name in var.repository_names : "arn:${local.partition}:ecr:${var.region}:${var.accounts["shared"].id}:repository/${name}"]
  promotion_source_reader = "${local.ci_role["dev"]}-reader"
  extra_policy_json       = var.accounts["prod"].extra_policy_json
  boundary_extra_actions  = var.accounts["prod"].boundary_extra_actions
  oidc_provider_arn       = var.accounts["prod"].oidc_provider_arn
}
