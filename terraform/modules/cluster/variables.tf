variable "name" {
  description = "EKS cluster name."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,99}$", var.name))
    error_message = "name must start with a letter and contain only letters, digits and hyphens (max 100 chars)."
  }
}

variable "cluster_version" {
  description = "Kubernetes minor version of the control plane, e.g. \"1.31\"."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.cluster_version))
    error_message = "cluster_version must look like \"1.31\" (major.minor, no patch)."
  }
}

variable "vpc_id" {
  description = "VPC the cluster runs in (used for tagging/outputs; subnets determine placement)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the control plane ENIs and the managed node group."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_private_access" {
  description = "Expose the Kubernetes API inside the VPC."
  type        = bool
  default     = true
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API on the internet (restricted by endpoint_public_access_cidrs)."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint. Narrow this to CI/VPN egress ranges where possible."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.endpoint_public_access_cidrs : can(cidrhost(c, 0))])
    error_message = "endpoint_public_access_cidrs must contain valid IPv4 CIDRs."
  }
}

variable "enabled_cluster_log_types" {
  description = "Control plane log types shipped to CloudWatch."
  type        = list(string)
  default     = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  validation {
    condition     = alltrue([for t in var.enabled_cluster_log_types : contains(["api", "audit", "authenticator", "controllerManager", "scheduler"], t)])
    error_message = "enabled_cluster_log_types may only contain api, audit, authenticator, controllerManager, scheduler."
  }
}

variable "log_retention_days" {
  description = "Retention of the control plane log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the secrets KMS key is deleted after destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "node_instance_types" {
  description = "Instance types of the managed node group (several types improve Spot/capacity availability)."
  type        = list(string)
  default     = ["t3.large"]

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "node_instance_types must not be empty."
  }
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_disk_size" {
  description = "Root volume size of the nodes, in GiB."
  type        = number
  default     = 50
}

variable "node_min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 1
}

variable "node_max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 3
}

variable "node_desired_size" {
  description = "Initial desired number of nodes. Changes made later by an autoscaler are ignored."
  type        = number
  default     = 2

  validation {
    condition     = var.node_desired_size >= var.node_min_size && var.node_desired_size <= var.node_max_size && var.node_min_size >= 0
    error_message = "node sizes must satisfy 0 <= node_min_size <= node_desired_size <= node_max_size."
  }
}

variable "oidc_thumbprints" {
  description = <<-EOT
    SHA-1 thumbprints of the OIDC issuer's root CA. Given as a variable instead
    of the tls_certificate data source so plans work without network access.
    The default is the Amazon root CA used by all EKS OIDC endpoints; since
    2023 IAM verifies EKS issuers against its own trust store anyway and the
    value is kept only because the API requires one.
  EOT
  type        = list(string)
  default     = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]

  validation {
    condition     = length(var.oidc_thumbprints) > 0 && alltrue([for t in var.oidc_thumbprints : can(regex("^[0-9a-fA-F]{40}$", t))])
    error_message = "oidc_thumbprints must be a non-empty list of 40 hex character SHA-1 fingerprints."
  }
}

variable "app_namespace" {
  description = "Kubernetes namespace of the application's service account (IRSA)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.app_namespace))
    error_message = "app_namespace must be a valid Kubernetes namespace name (RFC 1123 label)."
  }
}

variable "app_service_account" {
  description = "Name of the application's Kubernetes service account (IRSA)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.app_service_account))
    error_message = "app_service_account must be a valid Kubernetes service account name (RFC 1123 subdomain)."
  }
}

variable "app_policy_arns" {
  description = "IAM policy ARNs attached to the application's IRSA role."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Extra tags for every resource of this module."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary" {
  description = "The account's permissions boundary (terraform/shared's permissions_boundaries), attached to every IAM role this module creates; null: none. The deploy role that applies this module may create roles only with it."
  type        = string
  default     = null
}
