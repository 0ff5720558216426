# The OIDC roles the GitHub workflows assume in ONE account: the account of one environment (one AWS account per
# environment: dev, prod, shared). terraform/shared creates one instance per account, through that account's
# ci-admin role. Who may assume a role is decided by the token's `sub` claim, in the format GitHub sends once the
# repository's OIDC subject is customized to (repo, context, job_workflow_ref) (terraform/README.md "CI roles"):
#
#   repo:O/R:<context>:job_workflow_ref:O/R/.github/workflows/<file>@<ref>
#
#   role                       | context                 | workflow file @ ref
#   <env>-plan-pr              | pull_request            | pipeline @ refs/pull/*/merge
#   <env>-plan, build          | ref:refs/heads/<main>   | pipeline @ refs/heads/<main>
#   <env>-deploy               | environment:<env>       | pipeline @ refs/heads/<main> (dev); pipeline @
#                              |                         | refs/tags/release-* and apply @ refs/heads/<main> (prod);
#                              |                         | pipeline @ refs/heads/<shared_branch> (shared)
#   <env>-reader               | (no token: assumed by the promotion target's deploy role, sts:AssumeRole)
#
# So a tag that is not release-*, a branch that is not main, another workflow file, or a pull request never gets a
# deploy role. Every role carries the account's permissions boundary (boundary.tf); its own policy
# (policies.tf) names what deployctl does with it.

data "aws_partition" "current" {}

locals {
  issuer       = "token.actions.githubusercontent.com"
  provider_arn = var.oidc_provider_arn != null ? var.oidc_provider_arn : aws_iam_openid_connect_provider.github[0].arn
  partition    = data.aws_partition.current.partition
  repo         = var.github_repository
  path         = "/${var.project}-ci/"
  env          = var.environment

  workflow = { for name, file in var.workflows : name => "${local.repo}/.github/workflows/${file}" }
  main_ref = "refs/heads/${var.main_branch}"

  subjects = {
    pull_request = ["repo:${local.repo}:pull_request:job_workflow_ref:${local.workflow.pipeline}@refs/pull/*/merge"]
    main         = ["repo:${local.repo}:ref:${local.main_ref}:job_workflow_ref:${local.workflow.pipeline}@${local.main_ref}"]
    deploy = (
      var.terraform_only ? ["repo:${local.repo}:environment:${local.env}:job_workflow_ref:${local.workflow.pipeline}@refs/heads/${var.shared_branch}"]
      : var.protected ? [
        "repo:${local.repo}:environment:${local.env}:job_workflow_ref:${local.workflow.pipeline}@refs/tags/${var.release_tag_prefix}*",
        "repo:${local.repo}:environment:${local.env}:job_workflow_ref:${local.workflow.apply}@${local.main_ref}",
      ]
      : ["repo:${local.repo}:environment:${local.env}:job_workflow_ref:${local.workflow.pipeline}@${local.main_ref}"]
    )
  }

  # key => what the role is; `subjects`: the GitHub tokens that may assume it (empty: not a GitHub role)
  roles = merge(
    var.terraform_only ? {} : {
      "${local.env}-plan-pr" = { name = "${var.project}-${local.env}-plan-pr", kind = "plan-pr", subjects = local.subjects.pull_request }
      "${local.env}-plan"    = { name = "${var.project}-${local.env}-plan", kind = "plan", subjects = local.subjects.main }
    },
    { "${local.env}-deploy" = { name = "${var.project}-${local.env}-deploy", kind = "deploy", subjects = local.subjects.deploy } },
    var.build_role ? { build = { name = "${var.project}-build", kind = "build", subjects = local.subjects.main } } : {},
    length(var.reader_principals) > 0 ? { "${local.env}-reader" = { name = "${var.project}-${local.env}-reader", kind = "reader", subjects = [] } } : {},
  )
  github_roles = { for key, role in local.roles : key => role if length(role.subjects) > 0 }

  role_arn = { for key, role in local.roles : key => "arn:${local.partition}:iam::${var.account_id}:role${local.path}${role.name}" }
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.issuer}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "trust" {
  for_each = local.roles

  dynamic "statement" {
    for_each = length(each.value.subjects) > 0 ? [1] : []
    content {
      sid     = "GitHubActions"
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]

      principals {
        type        = "Federated"
        identifiers = [local.provider_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "${local.issuer}:aud"
        values   = ["sts.amazonaws.com"]
      }

      # StringLike: `*` stands only where GitHub puts a pull request number or a release version.
      condition {
        test     = "StringLike"
        variable = "${local.issuer}:sub"
        values   = each.value.subjects
      }
    }
  }

  # The reader role: assumed by the promotion target's deploy role (another account), nothing else.
  dynamic "statement" {
    for_each = each.value.kind == "reader" ? [1] : []
    content {
      sid     = "PromotionTarget"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = var.reader_principals
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name                 = each.value.name
  path                 = local.path
  description          = "deployctl ${each.value.kind} of ${local.env}${length(each.value.subjects) > 0 ? " (GitHub Actions)" : " (assumed by the promotion target)"}"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = var.max_session_duration
  permissions_boundary = local.boundary_arn # aws_iam_policy.boundary's ARN, known at plan

  depends_on = [aws_iam_policy.boundary]
}

resource "aws_iam_role_policy" "this" {
  for_each = local.roles

  name   = "deployctl-${each.value.kind}"
  role   = aws_iam_role.this[each.key].id
  policy = local.policy_json[each.key]
}
