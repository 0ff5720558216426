terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }

  # Partial configuration: deployctl passes bucket, key, region, use_lockfile
  # (S3-native locking, Terraform >= 1.10) and, for emulators, endpoint
  # settings with -backend-config at `terraform init`. See ../README.md.
  backend "s3" {}
}
