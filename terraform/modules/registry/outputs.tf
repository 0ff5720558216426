output "repository_urls" {
  description = "Map of repository name to repository URL (<account>.dkr.ecr.<region>.amazonaws.com/<name>)."
  value       = { for name, repo in aws_ecr_repository.this : name => repo.repository_url }
}

output "repository_arns" {
  description = "Map of repository name to repository ARN."
  value       = { for name, repo in aws_ecr_repository.this : name => repo.arn }
}

output "lifecycle_policy" {
  description = "Lifecycle policy JSON applied to every repository."
  value       = local.lifecycle_policy
}
