# What a deploy role may change: the resources of the root it applies, by name where AWS allows it
# (<project>-<environment>...), in its own account only. IAM only for the cluster's roles, and only with this
# account's permissions boundary attached (the iam:PermissionsBoundary condition), so the role that applies cannot
# make a role stronger than the boundary, nor touch the CI roles (their path) or the boundary itself.

locals {
  role_prefix = "${local.iam}:role/${local.named}-*"
}

# terraform/env: modules network (VPC, subnets, gateways, routes, default SG, flow logs), cluster (KMS, logs, IAM,
# EKS, node group, IRSA), and a second region's registry.
data "aws_iam_policy_document" "apply_env" {
  #checkov:skip=CKV_AWS_356:EC2 network resources are created by id (no name to scope by before they exist) and kms:CreateKey has no resource; the account is the environment's own.
  #checkov:skip=CKV_AWS_111:The same EC2 creates: ids are unknown before creation; scoped to this environment's account.
  statement {
    sid    = "Network"
    effect = "Allow"
    actions = [
      "ec2:AllocateAddress", "ec2:ReleaseAddress", "ec2:AssociateAddress", "ec2:DisassociateAddress",
      "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute",
      "ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute",
      "ec2:CreateInternetGateway", "ec2:DeleteInternetGateway", "ec2:AttachInternetGateway", "ec2:DetachInternetGateway",
      "ec2:CreateNatGateway", "ec2:DeleteNatGateway",
      "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:CreateRoute", "ec2:DeleteRoute", "ec2:ReplaceRoute",
      "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable", "ec2:ReplaceRouteTableAssociation",
      "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress",
      "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup",
      "ec2:CreateFlowLogs", "ec2:DeleteFlowLogs",
      "ec2:CreateTags", "ec2:DeleteTags",
      "kms:CreateKey",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "Cluster"
    effect    = "Allow"
    actions   = ["eks:CreateCluster", "eks:DeleteCluster", "eks:UpdateClusterConfig", "eks:UpdateClusterVersion", "eks:AssociateEncryptionConfig", "eks:CreateNodegroup", "eks:DeleteNodegroup", "eks:UpdateNodegroupConfig", "eks:UpdateNodegroupVersion", "eks:CreateAccessEntry", "eks:DeleteAccessEntry", "eks:UpdateAccessEntry", "eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy", "eks:TagResource", "eks:UntagResource"]
    resources = ["arn:${local.partition}:eks:*:${var.account_id}:cluster/${local.named}*", "arn:${local.partition}:eks:*:${var.account_id}:nodegroup/${local.named}*/*/*", "arn:${local.partition}:eks:*:${var.account_id}:access-entry/${local.named}*/*"]
  }

  statement {
    sid       = "Keys"
    effect    = "Allow"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias", "kms:EnableKeyRotation", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription", "kms:CreateGrant"]
    resources = ["arn:${local.partition}:kms:*:${var.account_id}:key/*", "arn:${local.partition}:kms:*:${var.account_id}:alias/eks/${local.named}*"]
  }

  statement {
    sid       = "Logs"
    effect    = "Allow"
    actions   = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource", "logs:TagLogGroup", "logs:UntagLogGroup"]
    resources = ["arn:${local.partition}:logs:*:${var.account_id}:log-group:/aws/eks/${local.named}*", "arn:${local.partition}:logs:*:${var.account_id}:log-group:/aws/vpc/${local.named}*"]
  }

  # Roles of the cluster (cluster, node, IRSA, flow logs): created and given policies only with the boundary.
  statement {
    sid       = "ClusterRolesBounded"
    effect    = "Allow"
    actions   = ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"]
    resources = [local.role_prefix]
    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arn]
    }
  }

  statement {
    sid       = "ClusterRoles"
    effect    = "Allow"
    actions   = ["iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole"]
    resources = [local.role_prefix]
  }

  statement {
    sid       = "PassClusterRoles"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [local.role_prefix]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["eks.amazonaws.com", "ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"]
    }
  }

  statement {
    sid       = "ServiceLinkedRoles"
    effect    = "Allow"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["${local.iam}:role/aws-service-role/*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com", "autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "IrsaProvider"
    effect    = "Allow"
    actions   = ["iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint", "iam:AddClientIDToOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider"]
    resources = ["${local.iam}:oidc-provider/oidc.eks.*"]
  }

  # This account's own repositories (a second region's, where promote copies images): managed and written.
  statement {
    sid       = "OwnRegistry"
    effect    = "Allow"
    actions   = concat(local.ecr_read, local.ecr_write, ["ecr:CreateRepository", "ecr:DeleteRepository", "ecr:PutLifecyclePolicy", "ecr:DeleteLifecyclePolicy", "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:TagResource", "ecr:UntagResource"])
    resources = ["arn:${local.partition}:ecr:*:${var.account_id}:repository/*"]
  }
}

# terraform/shared: the ECR repositories of this (the shared) account; the CI roles of every account are changed
# only through each account's ci-admin role, which only this role may assume.
data "aws_iam_policy_document" "apply_shared" {
  statement {
    sid       = "Registry"
    effect    = "Allow"
    actions   = concat(local.ecr_read, ["ecr:CreateRepository", "ecr:DeleteRepository", "ecr:GetLifecyclePolicy", "ecr:PutLifecyclePolicy", "ecr:DeleteLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:SetRepositoryPolicy", "ecr:DeleteRepositoryPolicy", "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:ListTagsForResource", "ecr:TagResource", "ecr:UntagResource"])
    resources = ["arn:${local.partition}:ecr:*:${var.account_id}:repository/*"]
  }

  statement {
    sid       = "RegistryEncryption"
    effect    = "Allow"
    actions   = ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["ecr.*.amazonaws.com"]
    }
  }

  statement {
    sid       = "CiAdmin"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = length(var.ci_admin_roles) > 0 ? var.ci_admin_roles : ["${local.iam}:role${local.path}none"]
  }
}
