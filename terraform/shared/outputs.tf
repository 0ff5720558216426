# Consumed by deployctl (terraform output -json): image push/pull targets.

output "repository_urls" {
  description = "Map of repository name to repository URL; deployctl tags and pushes <url>:<commit-sha>."
  value       = module.registry.repository_urls
}

output "repository_arns" {
  description = "Map of repository name to repository ARN."
  value       = module.registry.repository_arns
}
