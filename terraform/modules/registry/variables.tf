variable "repository_names" {
  description = "ECR repository names to create (one per application image)."
  type        = list(string)

  validation {
    condition     = length(var.repository_names) > 0 && alltrue([for n in var.repository_names : can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", n)) && length(n) >= 2 && length(n) <= 256])
    error_message = "repository_names must be a non-empty list of valid ECR names (lowercase, digits, . _ - /)."
  }

  validation {
    condition     = length(distinct(var.repository_names)) == length(var.repository_names)
    error_message = "repository_names must not contain duplicates."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for image encryption; null uses the AWS-managed aws/ecr key (still KMS)."
  type        = string
  default     = null
}

variable "untagged_expire_days" {
  description = "Untagged images (superseded layers/manifests) are expired this many days after push."
  type        = number
  default     = 7

  validation {
    condition     = var.untagged_expire_days >= 1 && floor(var.untagged_expire_days) == var.untagged_expire_days
    error_message = "untagged_expire_days must be a whole number >= 1."
  }
}

variable "commit_tag_expire_days" {
  description = "Images tagged with a commit sha (and not release-*) are expired this many days after push."
  type        = number
  default     = 90

  validation {
    condition     = var.commit_tag_expire_days >= 1 && floor(var.commit_tag_expire_days) == var.commit_tag_expire_days
    error_message = "commit_tag_expire_days must be a whole number >= 1."
  }
}

variable "commit_tag_patterns" {
  description = <<-EOT
    ECR tagPatternList selecting commit-sha tagged images for expiry. The
    default "*" matches every tag; release-* images are still never expired
    because a higher-priority rule claims them first (see main.tf). Note: ECR
    ANDs the entries (an image must have a tag matching each one), so use a
    single pattern unless that is really what you want.
  EOT
  type        = list(string)
  default     = ["*"]

  validation {
    condition     = length(var.commit_tag_patterns) > 0 && alltrue([for p in var.commit_tag_patterns : !startswith(p, "release-")])
    error_message = "commit_tag_patterns must be non-empty and must not target release-* tags."
  }
}

variable "reader_account_ids" {
  description = "AWS account IDs allowed to pull images (e.g. the prod account when the registry lives in a shared account). Empty: no repository policy."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.reader_account_ids : can(regex("^[0-9]{12}$", id))])
    error_message = "reader_account_ids must be 12-digit AWS account IDs."
  }
}

variable "tagger_role_arns" {
  description = "Roles of other accounts that may also put images (a promotion target's deploy role tags release-* images in place). Empty: none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.tagger_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", arn))])
    error_message = "tagger_role_arns must be role ARNs, without wildcards."
  }
}

variable "force_delete" {
  description = "Allow terraform destroy to delete repositories that still contain images. Keep false for real registries."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource of this module."
  type        = map(string)
  default     = {}
}
