# The shared account: the ECR repositories. Whoever applies this root (the shared deploy role in CI) runs in it.
provider "aws" {
  region              = var.region
  allowed_account_ids = var.aws_skip_checks ? null : [var.accounts["shared"].id]

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

# shared's account: its CI roles and permissions boundary, through its ci-admin role (assumed by whoever applies
# this root: the shared deploy role in CI).
provider "aws" {
  alias               = "ci_shared"
  region              = var.region
  allowed_account_ids = var.aws_skip_checks ? null : [var.accounts["shared"].id]

  assume_role {
    role_arn     = local.ci_admin["shared"]
    session_name = "deployctl-shared-apply"
  }

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

# dev's account: its CI roles and permissions boundary, through its ci-admin role (assumed by whoever applies
# this root: the shared deploy role in CI).
provider "aws" {
  alias               = "ci_dev"
  region              = var.region
  allowed_account_ids = var.aws_skip_checks ? null : [var.accounts["dev"].id]

  assume_role {
    role_arn     = local.ci_admin["dev"]
    session_name = "deployctl-shared-apply"
  }

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

# prod's account: its CI roles and permissions boundary, through its ci-admin role (assumed by whoever applies
# this root: the shared deploy role in CI).
provider "aws" {
  alias               = "ci_prod"
  region              = var.region
  allowed_account_ids = var.aws_skip_checks ? null : [var.accounts["prod"].id]

  assume_role {
    role_arn     = local.ci_admin["prod"]
    session_name = "deployctl-shared-apply"
  }

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
