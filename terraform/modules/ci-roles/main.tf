# OIDC roles for the GitHub workflows, one set per environment. Who may assume a role is decided by the token's
# `sub` claim alone (GitHub's default subject format), compared with StringEquals, never a wildcard:
#
#   sub                                    | roles
#   repo:O/R:pull_request                  | <env>-plan-pr   read-only; no state but its own environment's
#   repo:O/R:ref:refs/heads/<main_branch>  | <env>-plan      read-only (the reviewed plan); build (ECR push)
#   repo:O/R:environment:<env>             | <env>-deploy    state, lock, ledger, and deploy_policy_arns
#
# A job that names a GitHub environment gets `environment:<env>` as its subject whatever its ref, so the refs that
# may reach a deploy role are set by that environment's deployment policy (`github_environment_policies`): prod
# admits release-* tags (promote) and main (a reviewed plan's apply), dev and shared their branch only. Pull
# requests never get a deploy role nor main's plan role, and no role trusts a subject that is not listed here.

locals {
  issuer       = "token.actions.githubusercontent.com"
  provider_arn = var.oidc_provider_arn != null ? var.oidc_provider_arn : aws_iam_openid_connect_provider.github[0].arn
  repo         = "repo:${var.github_repository}"
  bucket_arn   = "arn:aws:s3:::${var.state_bucket}"
  ledger_arn   = "${local.bucket_arn}/deployctl/history" # deployctl's ledger: append-only (LedgerAppendOnly)
  deployable   = { for name, env in var.environments : name => env if !env.terraform_only }

  subjects = {
    pull_request = "${local.repo}:pull_request"
    main         = "${local.repo}:ref:refs/heads/${var.main_branch}"
  }

  roles = merge(
    { for name, env in local.deployable : "${name}-plan-pr" => { env = name, kind = "plan", subjects = [local.subjects.pull_request] } },
    { for name, env in local.deployable : "${name}-plan" => { env = name, kind = "plan", subjects = [local.subjects.main] } },
    { for name, env in var.environments : "${name}-deploy" => { env = name, kind = "deploy", subjects = ["${local.repo}:environment:${name}"] } },
    { build = { env = null, kind = "build", subjects = [local.subjects.main] } },
  )

  ecr_read = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
  ]
  ecr_write = [
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
  ]

  managed = merge(
    { for role, r in local.roles : "${role}:ReadOnlyAccess" => { role = role, arn = "arn:aws:iam::aws:policy/ReadOnlyAccess" } if r.kind == "plan" },
    merge([
      for name, env in var.environments : {
        for arn in env.deploy_policy_arns : "${name}-deploy:${arn}" => { role = "${name}-deploy", arn = arn }
      }
    ]...),
  )
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.issuer}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "trust" {
  for_each = local.roles

  statement {
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

    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = each.value.subjects
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name                 = "${var.project}-${each.key}"
  description          = "GitHub Actions (${join(", ", each.value.subjects)}): ${each.value.kind}"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = var.max_session_duration
}

data "aws_iam_policy_document" "permissions" {
  for_each = local.roles

  # Plan roles: ReadOnlyAccess reads every object, so the other environments' states (secrets) are denied.
  dynamic "statement" {
    for_each = each.value.kind == "plan" ? [1] : []
    content {
      sid       = "NoOtherEnvironmentsState"
      effect    = "Deny"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = [for name in keys(var.environments) : "${local.bucket_arn}/${name}/*" if name != each.value.env]
    }
  }

  dynamic "statement" {
    for_each = each.value.kind == "plan" ? [1] : []
    content {
      sid       = "NoSecrets"
      effect    = "Deny"
      actions   = ["secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
      resources = ["*"]
    }
  }

  # terraform plan takes the state lock (S3 lock file beside the state): the only write a plan role makes.
  dynamic "statement" {
    for_each = each.value.kind == "plan" ? [1] : []
    content {
      sid       = "StateLockFile"
      effect    = "Allow"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = ["${local.bucket_arn}/${each.value.env}/*.tflock"]
    }
  }

  # Its state and deployctl's lock (the lock's queue tickets and a released lock are deleted).
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      sid       = "StateLock"
      effect    = "Allow"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = ["${local.bucket_arn}/${each.value.env}/*", "${local.bucket_arn}/deployctl/locks/${each.value.env}*"]
    }
  }

  # Its own environment's ledger: new entries only (each written once, If-None-Match); nothing is ever deleted.
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      sid       = "LedgerAppend"
      effect    = "Allow"
      actions   = ["s3:PutObject"]
      resources = ["${local.ledger_arn}/${each.value.env}/*"]
    }
  }

  # Every ledger is readable, every version of it (a deleted or rewritten entry is tampering the reader reports):
  # promotion judges the source environment's evidence.
  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      sid       = "Ledgers"
      effect    = "Allow"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["${local.bucket_arn}/deployctl/*"]
    }
  }

  dynamic "statement" {
    for_each = each.value.kind == "deploy" ? [1] : []
    content {
      sid       = "ListStateBucket"
      effect    = "Allow"
      actions   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"]
      resources = [local.bucket_arn]
    }
  }

  # The ledger is append-only for every role, whatever else it is given (PowerUserAccess allows s3:*): an explicit
  # Deny wins over any Allow. The bucket's Object Lock (COMPLIANCE) keeps every version anyway, even from the
  # account's root; this keeps CI roles from hiding an entry behind a delete marker or changing the retention.
  statement {
    sid       = "LedgerAppendOnly"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"]
    resources = ["${local.ledger_arn}/*"]
  }

  statement {
    sid       = "LedgerRetention"
    effect    = "Deny"
    actions   = ["s3:PutBucketObjectLockConfiguration"]
    resources = [local.bucket_arn]
  }

  dynamic "statement" {
    for_each = length(var.repository_arns) > 0 && each.value.kind != "plan" ? [1] : []
    content {
      sid    = "Images"
      effect = "Allow"
      # build pushes :<sha>; a promotion target (protected) retags and copies release images
      actions   = each.value.kind == "build" || try(var.environments[each.value.env].protected, false) ? concat(local.ecr_read, local.ecr_write) : local.ecr_read
      resources = var.repository_arns
    }
  }

  statement {
    sid       = "RegistryLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = local.roles

  name   = "deployctl-${each.value.kind}"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.permissions[each.key].json
}

resource "aws_iam_role_policy_attachment" "managed" {
  for_each = local.managed

  role       = aws_iam_role.this[each.value.role].name
  policy_arn = each.value.arn
}
