variable "project" {
  description = "Prefix of every role name (<project>-<environment>-<kind>), of the role path (/<project>-ci/) and of the resources the roles manage (the env root names them <project>-<environment>...)."
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
  description = "The trunk: its pushes plan every environment, build the image and deploy dev (deployctl's main_branch)."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.main_branch))
    error_message = "main_branch must be a branch name without wildcards."
  }
}

variable "shared_branch" {
  description = "The branch whose pushes plan and apply the terraform-only environment (deployctl's shared_branch)."
  type        = string
  default     = "shared-terraform"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.shared_branch))
    error_message = "shared_branch must be a branch name without wildcards."
  }
}

variable "release_tag_prefix" {
  description = "Release tags (release-X.Y.Z) start with this: only a run of such a tag promotes into a protected environment."
  type        = string
  default     = "release-"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.release_tag_prefix))
    error_message = "release_tag_prefix must be plain text, without wildcards."
  }
}

variable "workflows" {
  description = "The workflow files (under .github/workflows/) whose jobs assume the roles: `pipeline` runs every event, `apply` applies a protected environment's reviewed plan (run from main_branch)."
  type = object({
    pipeline = optional(string, "pipeline.yml")
    apply    = optional(string, "apply-prod.yml")
  })
  default = {}

  validation {
    condition     = alltrue([for file in values(var.workflows) : can(regex("^[A-Za-z0-9._-]+\\.ya?ml$", file))])
    error_message = "workflows name files of .github/workflows/, without wildcards."
  }
}

variable "environment" {
  description = "The deployctl environment this account holds (one AWS account per environment: dev, prod, shared)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be a deployctl environment name."
  }
}

variable "account_id" {
  description = "The AWS account of the environment (where this module's provider creates the roles)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "protected" {
  description = "A promotion target (prod): its deploy role is assumed only by the pipeline's runs of release tags and by the apply workflow from main; pull requests plan it without its state."
  type        = bool
  default     = false
}

variable "terraform_only" {
  description = "The shared environment: no cluster, no pull-request or main plan role; its deploy role applies terraform/shared (ECR, and the CI roles through each account's ci-admin role)."
  type        = bool
  default     = false
}

variable "build_role" {
  description = "Create the build role here (the account of the ECR repositories it pushes to)."
  type        = bool
  default     = false
}

variable "state_bucket" {
  description = "The account's terraform backend bucket: states at <environment>/..., deployctl's locks and ledger under deployctl/."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be an S3 bucket name."
  }
}

variable "repository_arns" {
  description = "The shared ECR repositories: plan and deploy roles read them (across accounts: the repositories' policy lets this account pull), build pushes, a protected environment's deploy role tags release images."
  type        = list(string)
  default     = []
}

variable "reader_principals" {
  description = "Roles of other accounts (a promotion target's deploy role) that may assume this environment's read-only <environment>-reader role: its ledger and its cluster, the promotion's evidence. Empty: no reader role."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.reader_principals : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])
    error_message = "reader_principals must be role ARNs, without wildcards."
  }
}

variable "promotion_source_reader" {
  description = "The reader role of the environment this one promotes from (prod: dev's), which its deploy role may assume. null: none."
  type        = string
  default     = null

  validation {
    condition     = var.promotion_source_reader == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.promotion_source_reader))
    error_message = "promotion_source_reader must be a role ARN, without wildcards."
  }
}

variable "ci_admin_roles" {
  description = "terraform_only: the ci-admin role of every account (this one's included) that the shared deploy role assumes to manage their CI roles and boundaries."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.ci_admin_roles : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])
    error_message = "ci_admin_roles must be role ARNs, without wildcards."
  }
}

variable "extra_policy_json" {
  description = <<-EOT
    Policy documents (JSON) added to the deploy role, e.g. what the application's own resources need. To use a
    managed policy, paste its document (`aws iam get-policy-version`): a document is judged by what it allows,
    never by its name. Refused: an Allow of `*`, `*:*`, `iam:*` or any other IAM wildcard but Get*/List*, an
    Allow with NotAction or NotResource (it grants everything it does not name: PowerUserAccess), and IAM writes
    that escalate (PassRole, CreateRole, Put/Attach policies, access keys) on every resource.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for doc in var.extra_policy_json : can(flatten([jsondecode(doc).Statement]))])
    error_message = "each extra_policy_json must be a JSON policy document with a Statement."
  }

  validation {
    condition = alltrue(flatten([
      for doc in var.extra_policy_json : [
        for s in try(flatten([jsondecode(doc).Statement]), []) : try(s.Effect, "Allow") != "Allow" || (
          !can(s.NotAction) && !can(s.NotResource) && !can(s.NotPrincipal)
        )
      ]
    ]))
    error_message = "extra_policy_json: an Allow with NotAction or NotResource grants everything it does not name (e.g. PowerUserAccess): name the actions and resources."
  }

  validation {
    condition = alltrue(flatten([
      for doc in var.extra_policy_json : [
        for s in try(flatten([jsondecode(doc).Statement]), []) : [
          for action in flatten([try(s.Action, [])]) : try(s.Effect, "Allow") != "Allow" || !(
            contains(["*", "*:*"], trimspace(action))
            || (startswith(lower(action), "iam:") && strcontains(action, "*") && !startswith(lower(action), "iam:get") && !startswith(lower(action), "iam:list"))
            || (endswith(action, ":*") && contains(["sts", "organizations", "account"], lower(split(":", action)[0])))
          )
        ]
      ]
    ]))
    error_message = "extra_policy_json: an Allow of *, *:*, iam:* (or another IAM wildcard but Get*/List*), sts:* or organizations:* is admin-equivalent: name the actions."
  }

  validation {
    condition = alltrue(flatten([
      for doc in var.extra_policy_json : [
        for s in try(flatten([jsondecode(doc).Statement]), []) : try(s.Effect, "Allow") != "Allow" || !contains(flatten([try(s.Resource, [])]), "*") || length(setintersection(
          [for action in flatten([try(s.Action, [])]) : lower(action)],
          ["iam:passrole", "iam:createrole", "iam:putrolepolicy", "iam:attachrolepolicy", "iam:updateassumerolepolicy", "iam:putrolepermissionsboundary", "iam:deleterolepermissionsboundary", "iam:createpolicyversion", "iam:setdefaultpolicyversion", "iam:createuser", "iam:createaccesskey", "iam:createloginprofile", "iam:attachuserpolicy", "iam:putuserpolicy", "iam:addusertogroup", "sts:assumerole"]
        )) == 0
      ]
    ]))
    error_message = "extra_policy_json: IAM writes that escalate (PassRole, CreateRole, Put/Attach policies, access keys) or sts:AssumeRole on every resource (\"*\") are admin-equivalent: name the roles."
  }
}

variable "boundary_extra_actions" {
  description = "Actions (service:Action or service:Prefix*) the permissions boundary also lets roles of this account have, e.g. what the application's IRSA role needs (sqs:SendMessage). The same content rules as extra_policy_json."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for action in var.boundary_extra_actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9*]+$", action)) && !(
        (startswith(lower(action), "iam:") && strcontains(action, "*") && !startswith(lower(action), "iam:get") && !startswith(lower(action), "iam:list"))
        || contains(["sts", "organizations", "account"], lower(split(":", action)[0]))
      )
    ])
    error_message = "boundary_extra_actions must be service:Action entries; no *, IAM wildcards (but Get*/List*), sts, organizations or account actions."
  }
}

variable "oidc_provider_arn" {
  description = "An existing IAM OIDC provider for token.actions.githubusercontent.com in this account; null creates one."
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
