locals {
  partition = "aws"
  ci_admin  = { for env, account in var.accounts : env => "arn:${local.partition}:iam::${account.id}:role/${var.ci_admin_role_name}" }
  # The CI roles' ARNs are known before they exist: each account's roles are created by its own module instance
  # (ci.tf), and the registry's policy and the reader's trust name roles of another instance.
  ci_role = { for env, account in var.accounts : env => "arn:${local.partition}:iam::${account.id}:role/${var.project}-ci/${var.project}-${env}" }
}

# The registry of every environment, in the shared account: dev's and prod's accounts pull (their nodes, their CI
# roles), prod's deploy role also tags release images in place (deployctl promote: retag, manifest only).
module "registry" {
  source = "../modules/registry"

  repository_names       = var.repository_names
  reader_account_ids     = concat([var.accounts["dev"].id, var.accounts["prod"].id], var.reader_account_ids)
  tagger_role_arns       = [module.ci_prod.role_arns["prod-deploy"]]
  untagged_expire_days   = var.untagged_expire_days
  commit_tag_expire_days = var.commit_tag_expire_days
}
