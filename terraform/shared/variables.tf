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

# ---------------------------------------------------------------- CI roles

variable "github_repository" {
  description = "The GitHub repository (owner/name) whose workflows assume the CI roles."
  type        = string
}

variable "main_branch" {
  description = "deployctl's main_branch: main's pushes plan every environment, build, and deploy dev."
  type        = string
  default     = "main"
}

variable "shared_branch" {
  description = "deployctl's shared_branch: its pushes plan and apply this root."
  type        = string
  default     = "shared-terraform"
}

variable "state_bucket" {
  description = "The terraform backend bucket (deployctl's environments.*.terraform.backend.bucket)."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "An existing IAM OIDC provider for token.actions.githubusercontent.com; null creates it here."
  type        = string
  default     = null
}

variable "ci_environments" {
  description = "deployctl's environments as the CI roles see them (see modules/ci-roles variable environments)."
  type = map(object({
    protected          = optional(bool, false)
    terraform_only     = optional(bool, false)
    deploy_policy_arns = optional(list(string), [])
  }))
  default = {
    # This root: the repositories and the CI roles themselves.
    shared = {
      terraform_only     = true
      deploy_policy_arns = ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess", "arn:aws:iam::aws:policy/IAMFullAccess"]
    }
    # terraform/env creates the network, the cluster and its IAM roles.
    dev = {
      deploy_policy_arns = ["arn:aws:iam::aws:policy/PowerUserAccess", "arn:aws:iam::aws:policy/IAMFullAccess"]
    }
    prod = {
      protected          = true
      deploy_policy_arns = ["arn:aws:iam::aws:policy/PowerUserAccess", "arn:aws:iam::aws:policy/IAMFullAccess"]
    }
  }
}
