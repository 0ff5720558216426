# IAM OIDC provider: lets Kubernetes service accounts assume IAM roles (IRSA).
resource "aws_iam_openid_connect_provider" "this" {
  url             = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = var.oidc_thumbprints
  tags            = var.tags
}

locals {
  # Condition keys are "<issuer host/path>:sub", without the https:// scheme.
  oidc_issuer_hostpath = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}

# Role for the application's service account. Only that exact
# namespace/service account (sub) presenting an STS audience token may assume it.
resource "aws_iam_role" "app" {
  name                 = "${var.name}-${var.app_namespace}-${var.app_service_account}"
  permissions_boundary = var.permissions_boundary
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.this.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_issuer_hostpath}:sub" = "system:serviceaccount:${var.app_namespace}:${var.app_service_account}"
          "${local.oidc_issuer_hostpath}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
  tags = var.tags

  lifecycle {
    precondition {
      condition     = length("${var.name}-${var.app_namespace}-${var.app_service_account}") <= 64
      error_message = "IAM role names are limited to 64 characters: shorten name, app_namespace or app_service_account."
    }
  }
}

resource "aws_iam_role_policy_attachment" "app" {
  for_each = toset(var.app_policy_arns)

  role       = aws_iam_role.app.name
  policy_arn = each.value
}
