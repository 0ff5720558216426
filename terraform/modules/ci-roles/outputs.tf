output "role_arns" {
  description = "Role ARN by <environment>-<kind> (plan-pr, plan, deploy) and build: the workflows' AWS_*_ROLE_ARN_* variables."
  value       = { for key, role in aws_iam_role.this : key => role.arn }
}

output "trusted_subjects" {
  description = "The `sub` claims each role trusts (GitHub's default subject format)."
  value       = { for key, role in local.roles : key => role.subjects }
}

output "github_environment_policies" {
  description = "The deployment policy each GitHub environment needs (Settings > Environments): the refs that may run its jobs, and so assume its deploy role. Protected environments also need required reviewers."
  value = {
    for name, env in var.environments : name => {
      branches           = env.terraform_only ? [var.shared_branch] : [var.main_branch]
      tags               = env.protected ? ["${var.release_tag_prefix}*"] : []
      required_reviewers = env.protected
    }
  }
}
