# What each role may do: written for what deployctl does with it and for the resources its root manages, never a
# managed policy. One account per environment, so "this account" is "this environment": reads that AWS cannot
# scope below the account (ec2:Describe*, kms:ListAliases) stay inside it.
#
#   plan-pr  pull requests: reads the infrastructure it plans; its own state when the environment is not
#            protected, none when it is (deployctl plan --pr: -refresh=false against the empty pull-requests/
#            key); writes nothing (-lock=false), reads no ledger, lock or secret
#   plan     main: the same reads, its state, and its state's lock file (the reviewed plan is made under the lock)
#   deploy   its state and lock, its ledger (append), the infrastructure of its root (env: VPC, EKS, KMS, logs,
#            IAM for the cluster, only with the boundary; shared: ECR, and the CI roles through ci-admin), images
#   build    pushes images to the shared repositories
#   reader   a promotion source's evidence for the target's deploy role: its ledger and its cluster, read-only

locals {
  bucket       = "arn:${local.partition}:s3:::${var.state_bucket}"
  ledger       = "${local.bucket}/deployctl/history"
  iam          = "arn:${local.partition}:iam::${var.account_id}"
  named        = "${var.project}-${local.env}" # what the env root names its resources (clusters, roles, keys)
  boundary_arn = "${local.iam}:policy${local.path}${var.project}-boundary"

  # Pull requests plan a protected environment against this key, where nothing is ever written: no state.
  no_state_prefix = "pull-requests/${local.env}"

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

  kind_documents = {
    plan-pr = concat(
      [data.aws_iam_policy_document.infra_read.json, data.aws_iam_policy_document.plan_pr.json],
      length(var.repository_arns) > 0 ? [data.aws_iam_policy_document.images_read.json] : [],
    )
    plan = concat(
      [data.aws_iam_policy_document.infra_read.json, data.aws_iam_policy_document.plan.json],
      length(var.repository_arns) > 0 ? [data.aws_iam_policy_document.images_read.json] : [],
    )
    deploy = concat(
      [data.aws_iam_policy_document.deploy_state.json],
      var.terraform_only ? [data.aws_iam_policy_document.apply_shared.json] : [
        data.aws_iam_policy_document.infra_read.json,
        data.aws_iam_policy_document.apply_env.json,
      ],
      length(var.repository_arns) > 0 ? [var.protected ? data.aws_iam_policy_document.images_tag.json : data.aws_iam_policy_document.images_read.json] : [],
      var.promotion_source_reader == null ? [] : [data.aws_iam_policy_document.promotion_source.json],
      var.extra_policy_json,
    )
    build  = [data.aws_iam_policy_document.images_push.json]
    reader = [data.aws_iam_policy_document.reader.json]
  }

  policy_json = { for key, role in local.roles : key => data.aws_iam_policy_document.role[key].json }
}

data "aws_iam_policy_document" "role" {
  for_each = local.roles

  source_policy_documents = concat([data.aws_iam_policy_document.guard.json], local.kind_documents[each.value.kind])
}

# ---------------------------------------------------------------- every role

data "aws_iam_policy_document" "guard" {
  # The ledger is append-only for every role, whatever else it is given: an explicit Deny wins over any Allow. The
  # bucket's Object Lock (COMPLIANCE) keeps every version anyway; this keeps CI roles from hiding an entry behind
  # a delete marker or changing the retention.
  statement {
    sid       = "LedgerAppendOnly"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"]
    resources = ["${local.ledger}/*"]
  }

  statement {
    sid       = "LedgerRetention"
    effect    = "Deny"
    actions   = ["s3:PutBucketObjectLockConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning", "s3:DeleteBucket"]
    resources = [local.bucket]
  }

  statement {
    sid       = "NoSecrets"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
    resources = ["*"]
  }
}

# ---------------------------------------------------------------- plans

# What `terraform plan` of the env root refreshes in this account (EC2 has no resource-level Describe).
data "aws_iam_policy_document" "infra_read" {
  #checkov:skip=CKV_AWS_356:ec2:Describe* and kms:ListAliases have no resource-level permissions; the account is the environment's own.
  statement {
    sid       = "NetworkRead"
    effect    = "Allow"
    actions   = ["ec2:Describe*", "kms:ListAliases"]
    resources = ["*"]
  }

  statement {
    sid     = "ClusterRead"
    effect  = "Allow"
    actions = ["eks:Describe*", "eks:List*"]
    resources = [
      "arn:${local.partition}:eks:*:${var.account_id}:cluster/${local.named}*",
      "arn:${local.partition}:eks:*:${var.account_id}:nodegroup/${local.named}*/*/*",
      "arn:${local.partition}:eks:*:${var.account_id}:access-entry/${local.named}*/*",
    ]
  }

  statement {
    sid     = "ClusterIamRead"
    effect  = "Allow"
    actions = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListRoleTags", "iam:ListInstanceProfilesForRole", "iam:GetOpenIDConnectProvider", "iam:ListOpenIDConnectProviderTags", "iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = [
      "${local.iam}:role/${local.named}-*",
      "${local.iam}:oidc-provider/oidc.eks.*",
      "arn:${local.partition}:iam::aws:policy/*",
    ]
  }

  statement {
    sid       = "KeysLogsRegistryRead"
    effect    = "Allow"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:ListTagsLogGroup", "ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:ListTagsForResource"]
    resources = ["arn:${local.partition}:kms:*:${var.account_id}:key/*", "arn:${local.partition}:logs:*:${var.account_id}:log-group:*", "arn:${local.partition}:ecr:*:${var.account_id}:repository/*"]
  }
}

data "aws_iam_policy_document" "plan_pr" {
  statement {
    sid       = "ListStateBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket]
  }

  # Not protected: its own state, read only. Protected: the empty key only (no state, no secret in it).
  statement {
    sid       = var.protected ? "NoState" : "StateRead"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = var.protected ? ["${local.bucket}/${local.no_state_prefix}/*"] : ["${local.bucket}/${local.env}/*"]
  }

  dynamic "statement" {
    for_each = var.protected ? [1] : []
    content {
      sid       = "NoProtectedState"
      effect    = "Deny"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["${local.bucket}/${local.env}/*"]
    }
  }

  # deployctl's ledger and locks: a pull request's plan reads neither.
  statement {
    sid       = "NoLedgerNorLocks"
    effect    = "Deny"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.bucket}/deployctl/*"]
  }

  # No write at all, lock files included (deployctl plans pull requests with -lock=false).
  statement {
    sid       = "NoWrites"
    effect    = "Deny"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:PutObjectTagging", "s3:RestoreObject"]
    resources = ["${local.bucket}/*"]
  }

  statement {
    sid       = "NoDecrypt"
    effect    = "Deny"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "ListStateBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket]
  }

  statement {
    sid       = "StateRead"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket}/${local.env}/*"]
  }

  # terraform plan takes the state lock (the S3 lock file beside the state): the only write main's plan makes.
  statement {
    sid       = "StateLockFile"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket}/${local.env}/*.tflock"]
  }
}

# ---------------------------------------------------------------- deploy: state, lock, ledger

data "aws_iam_policy_document" "deploy_state" {
  # Its state and deployctl's lock (the lock's queue tickets and a released lock are deleted).
  statement {
    sid       = "StateLock"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket}/${local.env}/*", "${local.bucket}/deployctl/locks/${local.env}*"]
  }

  # Its own environment's ledger: new entries only (each written once, If-None-Match); nothing is ever deleted.
  statement {
    sid       = "LedgerAppend"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${local.ledger}/${local.env}/*"]
  }

  # Every ledger of the bucket, every version (a deleted or rewritten entry is tampering the reader reports).
  statement {
    sid       = "Ledgers"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.bucket}/deployctl/*"]
  }

  statement {
    sid       = "ListStateBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"]
    resources = [local.bucket]
  }
}

# ---------------------------------------------------------------- images (the shared repositories)

data "aws_iam_policy_document" "images_read" {
  statement {
    sid       = "Images"
    effect    = "Allow"
    actions   = local.ecr_read
    resources = length(var.repository_arns) > 0 ? var.repository_arns : ["arn:${local.partition}:ecr:*:${var.account_id}:repository/none"]
  }

  statement {
    sid       = "RegistryLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
}

# A promotion target retags the release (the repositories' policy lets its deploy role put images): IMMUTABLE
# repositories, so a tag once written never moves.
data "aws_iam_policy_document" "images_tag" {
  source_policy_documents = [data.aws_iam_policy_document.images_read.json]

  statement {
    sid       = "ImagesTag"
    effect    = "Allow"
    actions   = local.ecr_write
    resources = length(var.repository_arns) > 0 ? var.repository_arns : ["arn:${local.partition}:ecr:*:${var.account_id}:repository/none"]
  }
}

data "aws_iam_policy_document" "images_push" {
  source_policy_documents = [data.aws_iam_policy_document.images_tag.json]
}

# ---------------------------------------------------------------- promotion evidence

data "aws_iam_policy_document" "promotion_source" {
  statement {
    sid       = "PromotionSource"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = var.promotion_source_reader == null ? ["${local.iam}:role${local.path}none"] : [var.promotion_source_reader]
  }
}

data "aws_iam_policy_document" "reader" {
  statement {
    sid       = "LedgerRead"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.ledger}/${local.env}/*"]
  }

  statement {
    sid       = "ListLedger"
    effect    = "Allow"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = [local.bucket]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["deployctl/history/${local.env}/*"]
    }
  }

  statement {
    sid       = "LedgerBucket"
    effect    = "Allow"
    actions   = ["s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"]
    resources = [local.bucket]
  }

  statement {
    sid       = "ClusterRead"
    effect    = "Allow"
    actions   = ["eks:DescribeCluster"]
    resources = ["arn:${local.partition}:eks:*:${var.account_id}:cluster/${local.named}*"]
  }

  statement {
    sid       = "NoStateNorWrites"
    effect    = "Deny"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = ["${local.bucket}/*"]
  }
}
