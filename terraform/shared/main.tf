module "registry" {
  source = "../modules/registry"

  repository_names       = var.repository_names
  reader_account_ids     = var.reader_account_ids
  untagged_expire_days   = var.untagged_expire_days
  commit_tag_expire_days = var.commit_tag_expire_days
}
