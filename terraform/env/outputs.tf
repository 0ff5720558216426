# Consumed by deployctl (terraform output -json) to configure kubectl/helm.

output "cluster_name" {
  description = "EKS cluster name (for `aws eks update-kubeconfig --name`)."
  value       = module.cluster.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API server URL."
  value       = module.cluster.cluster_endpoint
}

output "cluster_oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster (IRSA)."
  value       = module.cluster.cluster_oidc_issuer_url
}

output "app_irsa_role_arn" {
  description = "IAM role ARN for the app service account annotation eks.amazonaws.com/role-arn (helm value)."
  value       = module.cluster.app_irsa_role_arn
}

output "vpc_id" {
  description = "ID of the environment VPC."
  value       = module.network.vpc_id
}
