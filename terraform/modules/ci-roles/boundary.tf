# The account's permissions boundary: attached to every role the terraform creates here (the CI roles, and the
# env root's cluster, node, IRSA and flow-log roles: var.permissions_boundary_arn there). A role can never do more
# than its boundary allows, whatever policies it is given; and what the boundary denies no role here can do:
#
#   - create a role, or put or attach a policy to one, without this boundary (so the apply role cannot make a
#     stronger role than itself and hand it to anyone), or remove a role's boundary;
#   - change the boundary policy, the CI roles (their path) or the GitHub OIDC provider: only the account's
#     ci-admin role, assumed by the shared apply role, does (it is not under this boundary);
#   - create users, access keys or login profiles (no long-lived credential);
#   - delete or retain a ledger entry, or change the state bucket's Object Lock, policy or versioning.
#
# What it allows is the services deployctl's roots use (and boundary_extra_actions, e.g. the application's).

locals {
  ci_roles_arn = "${local.iam}:role${local.path}*"
  boundary_allows = concat([
    "ec2:*", "eks:*", "elasticloadbalancing:*", "autoscaling:*", "kms:*", "logs:*", "cloudwatch:*", "ecr:*", "s3:*",
    "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:GetCallerIdentity", "sts:TagSession",
    "iam:Get*", "iam:List*", "iam:PassRole", "iam:CreateServiceLinkedRole",
    "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy",
    "iam:TagRole", "iam:UntagRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
    "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary",
    "iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:TagOpenIDConnectProvider",
    "iam:UntagOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider",
  ], var.boundary_extra_actions)
}

data "aws_iam_policy_document" "boundary" {
  #checkov:skip=CKV_AWS_356:A permissions boundary is a ceiling, not a grant: what a role gets is its own policy within it; the Denies below are what it enforces.
  #checkov:skip=CKV_AWS_109:The same ceiling: IAM writes are allowed only with this boundary (Deny below), never to the CI roles or the boundary itself.
  #checkov:skip=CKV_AWS_111:The same ceiling: writes are granted by each role's own scoped policy.
  #checkov:skip=CKV_AWS_107:The same ceiling: no credentials of users can be created (Deny below); sts for role chaining only.
  statement {
    sid       = "Ceiling"
    effect    = "Allow"
    actions   = local.boundary_allows
    resources = ["*"]
  }

  statement {
    sid       = "NoRoleWithoutThisBoundary"
    effect    = "Deny"
    actions   = ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:AttachRolePolicy"]
    resources = ["*"]
    condition {
      test     = "StringNotEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arn]
    }
  }

  statement {
    sid       = "KeepBoundaries"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary", "iam:DeleteUserPermissionsBoundary"]
    resources = ["*"]
  }

  statement {
    sid       = "NoChangeToTheCiIdentities"
    effect    = "Deny"
    actions   = ["iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:TagPolicy", "iam:UntagPolicy", "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:TagRole", "iam:UntagRole", "iam:DeleteOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint", "iam:AddClientIDToOpenIDConnectProvider"]
    resources = [local.boundary_arn, local.ci_roles_arn, "${local.iam}:oidc-provider/${local.issuer}"]
  }

  statement {
    sid       = "NoLongLivedCredentials"
    effect    = "Deny"
    actions   = ["iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:AddUserToGroup", "iam:CreateServiceSpecificCredential"]
    resources = ["*"]
  }

  statement {
    sid       = "LedgerAppendOnly"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"]
    resources = ["${local.ledger}/*"]
  }

  statement {
    sid       = "StateBucketSettings"
    effect    = "Deny"
    actions   = ["s3:PutBucketObjectLockConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning", "s3:DeleteBucket"]
    resources = [local.bucket]
  }
}

resource "aws_iam_policy" "boundary" {
  name        = "${var.project}-boundary"
  path        = local.path
  description = "deployctl: the permissions boundary of every role the terraform creates in the ${local.env} account"
  policy      = data.aws_iam_policy_document.boundary.json
}
