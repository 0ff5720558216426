provider "aws" {
  region = var.region
  # One account per environment: credentials of another account (dev's role planning prod) fail at once.
  allowed_account_ids = var.aws_skip_checks || var.account_id == null ? null : [var.account_id]

  # Real AWS: all of these stay false. Emulators (moto/LocalStack) have no
  # real account or instance metadata, and need path-style S3 addressing.
  skip_credentials_validation = var.aws_skip_checks
  skip_requesting_account_id  = var.aws_skip_checks
  skip_metadata_api_check     = var.aws_skip_checks
  s3_use_path_style           = var.aws_skip_checks

  dynamic "endpoints" {
    for_each = var.aws_endpoint_url == null ? [] : [var.aws_endpoint_url]
    content {
      s3       = endpoints.value
      ec2      = endpoints.value
      iam      = endpoints.value
      eks      = endpoints.value
      ecr      = endpoints.value
      sts      = endpoints.value
      kms      = endpoints.value
      logs     = endpoints.value
      dynamodb = endpoints.value
    }
  }

  default_tags {
    tags = {
      environment = var.environment
      managed-by  = "terraform"
      project     = var.project
    }
  }
}

# The environment's other region (var.secondary): Terraform's provider configurations are static, so each extra
# region is one alias (and its module blocks in main.tf). Unused (no resources) while var.secondary is null.
provider "aws" {
  alias               = "secondary"
  region              = var.secondary == null ? var.region : var.secondary.region
  allowed_account_ids = var.aws_skip_checks || var.account_id == null ? null : [var.account_id]

  # Real AWS: all of these stay false. Emulators (moto/LocalStack) have no
  # real account or instance metadata, and need path-style S3 addressing.
  skip_credentials_validation = var.aws_skip_checks
  skip_requesting_account_id  = var.aws_skip_checks
  skip_metadata_api_check     = var.aws_skip_checks
  s3_use_path_style           = var.aws_skip_checks

  dynamic "endpoints" {
    for_each = var.aws_endpoint_url == null ? [] : [var.aws_endpoint_url]
    content {
      s3       = endpoints.value
      ec2      = endpoints.value
      iam      = endpoints.value
      eks      = endpoints.value
      ecr      = endpoints.value
      sts      = endpoints.value
      kms      = endpoints.value
      logs     = endpoints.value
      dynamodb = endpoints.value
    }
  }

  default_tags {
    tags = {
      environment = var.environment
      managed-by  = "terraform"
      project     = var.project
    }
  }
}
