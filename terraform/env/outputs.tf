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

output "clusters" {
  description = "Every cluster of the environment by region: name, endpoint and region (deployctl's environments.NAME.clusters)."
  value = merge(
    { (var.region) = { name = module.cluster.cluster_name, endpoint = module.cluster.cluster_endpoint, region = var.region } },
    {
      for index, secondary in local.secondary : secondary.region => {
        name     = module.secondary_cluster[index].cluster_name
        endpoint = module.secondary_cluster[index].cluster_endpoint
        region   = secondary.region
      }
    },
  )
}

output "regional_repository_urls" {
  description = "The other region's ECR repositories, name -> URL (a cluster's image_registry is their host); {} with one region."
  value       = length(local.secondary) == 0 ? {} : module.secondary_registry[0].repository_urls
}
