# ---------------------------------------------------------------- provider / emulator

variable "region" {
  description = "AWS region."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like an AWS region, e.g. us-east-1."
  }
}

variable "aws_endpoint_url" {
  description = "Override endpoint for all AWS services used (emulator URL such as http://127.0.0.1:5055). null = real AWS."
  type        = string
  default     = null

  validation {
    condition     = var.aws_endpoint_url == null || can(regex("^https?://", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be null or an http(s) URL."
  }
}

variable "aws_skip_checks" {
  description = "Skip credential/account/metadata checks and use path-style S3. Only for emulators."
  type        = bool
  default     = false
}

variable "project" {
  description = "Project name, used as resource name prefix and tag."
  type        = string
  default     = "deployctl"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 chars of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment tag of the shared (cross-environment) resources."
  type        = string
  default     = "shared"

  validation {
    condition     = var.environment == "shared"
    error_message = "The shared root only manages the \"shared\" environment."
  }
}

# ---------------------------------------------------------------- registry

variable "repository_names" {
  description = "ECR repositories to create, one per application image."
  type        = list(string)
}

variable "reader_account_ids" {
  description = "Other AWS accounts (e.g. prod when the registry lives elsewhere) allowed to pull. Empty: no repository policy."
  type        = list(string)
  default     = []
}

variable "untagged_expire_days" {
  description = "Days after which untagged images expire."
  type        = number
  default     = 7
}

variable "commit_tag_expire_days" {
  description = "Days after which commit-sha tagged images expire (release-* images never expire)."
  type        = number
  default     = 90
}
