# Consumed by deployctl (terraform output -json): image push/pull targets.

output "repository_urls" {
  description = "Map of repository name to repository URL; deployctl tags and pushes <url>:<commit-sha>."
  value       = module.registry.repository_urls
}

output "repository_arns" {
  description = "Map of repository name to repository ARN."
  value       = module.registry.repository_arns
}

output "ci_role_arns" {
  description = "CI role ARN by <environment>-<kind> (plan-pr, plan, deploy) and build: set them as the workflows' variables (README: CI roles)."
  value       = module.ci_roles.role_arns
}

output "github_environment_policies" {
  description = "The deployment policy each GitHub environment needs: the refs that may run its jobs."
  value       = module.ci_roles.github_environment_policies
}
