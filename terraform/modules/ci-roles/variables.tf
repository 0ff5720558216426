variable "project" {
  description = "Prefix of every role name (<project>-<environment>-<kind>)."
  type        = string
  default     = "deployctl"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 chars of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "github_repository" {
  description = "The GitHub repository whose workflows assume the roles, as owner/name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be owner/name, without wildcards."
  }
}

variable "main_branch" {
  description = "The trunk: its pushes plan every environment and build the image (deployctl's main_branch)."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.main_branch))
    error_message = "main_branch must be a branch name without wildcards."
  }
}

variable "shared_branch" {
  description = "The branch whose pushes plan and apply the terraform-only environments (deployctl's shared_branch)."
  type        = string
  default     = "shared-terraform"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.shared_branch))
    error_message = "shared_branch must be a branch name without wildcards."
  }
}

variable "release_tag_prefix" {
  description = "Release tags (release-X.Y.Z) start with this; only they (and main) may run a protected environment's jobs."
  type        = string
  default     = "release-"
}

variable "environments" {
  description = <<-EOT
    The environments CI reaches, by deployctl's environment name. `protected` (prod): changed only by jobs of the
    GitHub environment of that name (release tags and reviewed plan applies); `terraform_only` (shared): planned and
    applied by its own branch's job, no pull-request or main plan role. `deploy_policy_arns`: what the deploy role may
    change besides its state, lock and ledger (e.g. the policies terraform needs to create the environment).
  EOT
  type = map(object({
    protected          = optional(bool, false)
    terraform_only     = optional(bool, false)
    deploy_policy_arns = optional(list(string), [])
  }))

  validation {
    condition     = length(var.environments) > 0 && alltrue([for name in keys(var.environments) : can(regex("^[a-z][a-z0-9-]{0,39}$", name))])
    error_message = "environments must be a non-empty map keyed by deployctl environment names."
  }

  validation {
    condition     = alltrue([for env in values(var.environments) : !contains(env.deploy_policy_arns, "arn:aws:iam::aws:policy/AdministratorAccess")])
    error_message = "a deploy role must not get AdministratorAccess: name the policies terraform needs."
  }
}

variable "state_bucket" {
  description = "The terraform backend bucket: states at <environment>/..., deployctl's locks and ledger under deployctl/."
  type        = string
}

variable "repository_arns" {
  description = "ECR repositories the build role pushes to and deploy roles read (promotion targets also tag)."
  type        = list(string)
  default     = []
}

variable "oidc_provider_arn" {
  description = "An existing IAM OIDC provider for token.actions.githubusercontent.com; null creates one."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Longest role session, in seconds (a prod promotion waits for the lock and the rollout)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}
