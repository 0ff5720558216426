output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "EKS cluster ARN."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "Kubernetes API server URL."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster (https://...)."
  value       = aws_eks_cluster.this.identity[0].oidc[0].issuer
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider for IRSA."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "app_irsa_role_arn" {
  description = "IAM role ARN to put in the app service account's eks.amazonaws.com/role-arn annotation."
  value       = aws_iam_role.app.arn
}

output "node_role_arn" {
  description = "IAM role ARN of the managed node group."
  value       = aws_iam_role.node.arn
}

output "kms_key_arn" {
  description = "KMS key used for secrets and control plane log encryption."
  value       = aws_kms_key.this.arn
}

output "iam_roles" {
  description = "Every IAM role of the module: name -> its permissions boundary (null: none)."
  value       = { for role in [aws_iam_role.cluster, aws_iam_role.node, aws_iam_role.app] : role.name => role.permissions_boundary }
}
