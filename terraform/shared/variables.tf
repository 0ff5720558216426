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

# ---------------------------------------------------------------- accounts

variable "accounts" {
  description = <<-EOT
    One AWS account per environment: `shared` (the ECR repositories, the build role and this root's state), `dev`
    and `prod`, each with its own state bucket (deployctl's environments.NAME.terraform.backend.bucket and
    aws.account_id). Each account's CI roles and permissions boundary are created through its ci-admin role
    (ci_admin_role_name). `extra_policy_json`: what the account's deploy role may also do (judged by content, see
    modules/ci-roles); `boundary_extra_actions`: what the account's boundary also allows (e.g. the application's
    IRSA needs). `oidc_provider_arn`: an existing GitHub OIDC provider there (null creates one).
  EOT
  type = map(object({
    id                     = string
    state_bucket           = string
    extra_policy_json      = optional(list(string), [])
    boundary_extra_actions = optional(list(string), [])
    oidc_provider_arn      = optional(string)
  }))

  validation {
    condition     = join(",", sort(keys(var.accounts))) == "dev,prod,shared"
    error_message = "accounts must name exactly shared, dev and prod (a new environment is a new provider alias and module block: ci.tf)."
  }

  validation {
    condition     = alltrue([for a in values(var.accounts) : can(regex("^[0-9]{12}$", a.id))]) && length(distinct([for a in values(var.accounts) : a.id])) == 3
    error_message = "accounts: three different 12-digit AWS account ids (one account per environment)."
  }

  validation {
    condition     = length(distinct([for a in values(var.accounts) : a.state_bucket])) == 3
    error_message = "accounts: each environment has its own state bucket."
  }
}

variable "ci_admin_role_name" {
  description = "The role, in every account, through which this root manages the account's CI roles and boundary (created once by the account's administrator: terraform/README.md \"Accounts\"). Only the shared deploy role may assume it."
  type        = string
  default     = "deployctl-ci-admin"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.ci_admin_role_name))
    error_message = "ci_admin_role_name must be an IAM role name."
  }
}

# ---------------------------------------------------------------- registry

variable "repository_names" {
  description = "ECR repositories to create, one per application image."
  type        = list(string)
}

variable "reader_account_ids" {
  description = "Accounts besides dev's and prod's (pulled by every environment's account) that may pull images."
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
