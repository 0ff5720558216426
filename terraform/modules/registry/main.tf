data "aws_partition" "current" {}

locals {
  repositories = toset(var.repository_names)

  # ECR evaluates rules by ascending priority, and an image that matches the
  # tag selection of a rule can never be expired by a lower-priority rule.
  # Rule 1 therefore "claims" every release-* image with a count threshold
  # that is never reached, which is how ECR expresses "keep forever"
  # (lifecycle rules only have the expire action).
  lifecycle_policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep release-* images (claimed here so no later rule can expire them)"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["release-"]
          countType     = "imageCountMoreThan"
          countNumber   = 10000
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 10
        description  = "Expire untagged images after ${var.untagged_expire_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expire_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 20
        description  = "Expire commit-sha tagged images after ${var.commit_tag_expire_days} days"
        selection = {
          tagStatus      = "tagged"
          tagPatternList = var.commit_tag_patterns
          countType      = "sinceImagePushed"
          countUnit      = "days"
          countNumber    = var.commit_tag_expire_days
        }
        action = { type = "expire" }
      },
    ]
  })

  # Other accounts' access (one AWS account per environment: the registry lives in the shared one). Readers (an
  # environment's account: its nodes and CI roles, each still needing its own identity policy) pull; taggers (a
  # promotion target's deploy role) also put the release tag: IMMUTABLE, so a tag once written never moves.
  reader_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      length(var.reader_account_ids) == 0 ? [] : [{
        Sid       = "CrossAccountPull"
        Effect    = "Allow"
        Principal = { AWS = [for id in var.reader_account_ids : "arn:${data.aws_partition.current.partition}:iam::${id}:root"] }
        Action = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:DescribeImages",
          "ecr:DescribeRepositories",
          "ecr:GetDownloadUrlForLayer",
          "ecr:ListImages",
        ]
      }],
      length(var.tagger_role_arns) == 0 ? [] : [{
        Sid       = "PromotionTag"
        Effect    = "Allow"
        Principal = { AWS = var.tagger_role_arns }
        Action = [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:CompleteLayerUpload",
          "ecr:DescribeImages",
          "ecr:InitiateLayerUpload",
          "ecr:PutImage",
          "ecr:UploadLayerPart",
        ]
      }],
    )
  })
}

resource "aws_ecr_repository" "this" {
  for_each = local.repositories

  name = each.value

  # IMMUTABLE: deployctl pushes each image once under its commit-sha tag (and
  # release-* tags for releases) and deploys by that tag; `latest` is not used
  # in prod. Immutability guarantees a tag that was tested is byte-for-byte
  # the tag that gets deployed or rolled back to, and that a release tag can
  # never be moved, accidentally or maliciously. Re-pushing an existing tag
  # fails, which is the desired behaviour.
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy     = local.lifecycle_policy
}

resource "aws_ecr_repository_policy" "readers" {
  for_each = length(var.reader_account_ids) + length(var.tagger_role_arns) > 0 ? aws_ecr_repository.this : {}

  repository = each.value.name
  policy     = local.reader_policy
}
