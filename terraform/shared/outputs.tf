# Consumed by deployctl (terraform output -json): image push/pull targets; and by whoever sets up CI.

output "repository_urls" {
  description = "Map of repository name to repository URL; deployctl tags and pushes <url>:<commit-sha>."
  value       = module.registry.repository_urls
}

output "repository_arns" {
  description = "Map of repository name to repository ARN."
  value       = module.registry.repository_arns
}

output "ci_role_arns" {
  description = "CI role ARN by <environment>-<kind> (plan-pr, plan, deploy), build, and dev-reader: the workflows' AWS_*_ROLE_ARN_* variables; dev-reader is deployctl's aws.role_arn of dev (README: CI roles)."
  value       = merge(module.ci_shared.role_arns, module.ci_dev.role_arns, module.ci_prod.role_arns)
}

output "ci_trusted_subjects" {
  description = "The token subjects each GitHub role trusts (the customized sub: repo, context, job_workflow_ref)."
  value       = merge(module.ci_shared.trusted_subjects, module.ci_dev.trusted_subjects, module.ci_prod.trusted_subjects)
}

output "permissions_boundaries" {
  description = "Each account's permissions boundary: terraform/env's permissions_boundary_arn of that environment."
  value       = { shared = module.ci_shared.boundary_arn, dev = module.ci_dev.boundary_arn, prod = module.ci_prod.boundary_arn }
}

output "accounts" {
  description = "The account and state bucket of each environment (deployctl's aws.account_id and terraform.backend.bucket)."
  value       = { for env, account in var.accounts : env => { id = account.id, state_bucket = account.state_bucket } }
}

output "github_environment_policies" {
  description = "The deployment policy each GitHub environment needs: the refs that may run its jobs, and whether reviewers must approve."
  value       = { shared = module.ci_shared.github_environment_policy, dev = module.ci_dev.github_environment_policy, prod = module.ci_prod.github_environment_policy }
}
