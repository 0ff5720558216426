output "role_arns" {
  description = "Role ARN by <environment>-<kind> (plan-pr, plan, deploy, reader) and build: the workflows' AWS_*_ROLE_ARN_* variables (the reader: deployctl's aws.role_arn of a promotion source)."
  value       = { for key, role in aws_iam_role.this : key => role.arn }
}

output "trusted_subjects" {
  description = "The `sub` claims each GitHub role trusts (StringLike), in the customized format (repo, context, job_workflow_ref)."
  value       = { for key, role in local.github_roles : key => role.subjects }
}

output "boundary_arn" {
  description = "The account's permissions boundary: the env root attaches it to every role it creates (permissions_boundary_arn)."
  value       = aws_iam_policy.boundary.arn
}

output "policies" {
  description = "Each role's own policy (JSON) and its trust policy: what tests and reviewers read."
  value       = { for key, role in local.roles : key => { policy = local.policy_json[key], trust = data.aws_iam_policy_document.trust[key].json } }
}

output "github_environment_policy" {
  description = "The deployment policy of this environment's GitHub environment (Settings > Environments, or .github/settings): the refs that may run its jobs, and so assume its deploy role."
  value = {
    branches           = var.terraform_only ? [var.shared_branch] : [var.main_branch]
    tags               = var.protected ? ["${var.release_tag_prefix}*"] : []
    required_reviewers = var.protected || var.terraform_only
  }
}
