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

variable "account_id" {
  description = "The environment's AWS account (one account per environment). The provider refuses credentials of any other account (real AWS), and every IAM role this root creates carries that account's permissions boundary. null: neither (a single-account setup)."
  type        = string
  default     = null

  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be null or 12 digits."
  }
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
  description = "Environment name; also the suffix of the cluster name."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

# ---------------------------------------------------------------- network

variable "vpc_cidr" {
  description = "VPC CIDR (/16 to /22)."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 22, false)
    error_message = "vpc_cidr must be a valid IPv4 CIDR with a prefix length between /16 and /22."
  }
}

variable "az_count" {
  description = "Number of availability zones (EKS needs at least 2)."
  type        = number

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count && var.az_count <= length(var.availability_zones)
    error_message = "az_count must be a whole number between 2 and 6 and not exceed the number of availability_zones."
  }
}

variable "availability_zones" {
  description = "Pinned availability zone names of var.region, in order; the first az_count are used."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheap) instead of one per AZ (highly available)."
  type        = bool
}

variable "enable_flow_logs" {
  description = "Enable VPC flow logs to CloudWatch."
  type        = bool
  default     = true
}

variable "flow_logs_retention_days" {
  description = "Retention of VPC flow logs, in days (prod: at least 365)."
  type        = number
  default     = 365

  validation {
    condition     = var.environment != "prod" || var.flow_logs_retention_days >= 365
    error_message = "prod keeps VPC flow logs for at least 365 days."
  }
}

# ---------------------------------------------------------------- cluster

variable "cluster_version" {
  description = "Kubernetes version of the EKS control plane, e.g. \"1.31\"."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.cluster_version))
    error_message = "cluster_version must look like \"1.31\"."
  }
}

variable "endpoint_private_access" {
  description = "Expose the Kubernetes API inside the VPC."
  type        = bool
  default     = true
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API publicly (needed when deployctl runs outside the VPC)."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "cluster_log_retention_days" {
  description = "Retention of EKS control plane (incl. audit) logs, in days (prod: at least 365)."
  type        = number
  default     = 365

  validation {
    condition     = var.environment != "prod" || var.cluster_log_retention_days >= 365
    error_message = "prod keeps EKS control plane logs for at least 365 days."
  }
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT."
  type        = string
  default     = "ON_DEMAND"
}

variable "node_min_size" {
  description = "Minimum number of nodes."
  type        = number
}

variable "node_max_size" {
  description = "Maximum number of nodes."
  type        = number
}

variable "node_desired_size" {
  description = "Initial desired number of nodes."
  type        = number
}

# ---------------------------------------------------------------- application (IRSA)

variable "app_namespace" {
  description = "Kubernetes namespace deployctl installs the API chart into."
  type        = string
  default     = "api"
}

variable "app_service_account" {
  description = "Service account of the API pods; its role ARN is output as app_irsa_role_arn."
  type        = string
  default     = "api"
}

variable "app_policy_arns" {
  description = "IAM policy ARNs the API pods need (attached to the IRSA role)."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------- another region (several clusters)

variable "secondary" {
  description = <<-EOT
    Another region of this environment (prod in two regions, rolled out in waves by deployctl): its own
    network, EKS cluster (<project>-<environment>-<region>) and ECR repositories (deployctl's promote copies
    each image there), created through the provider alias aws.secondary. null = one region.
  EOT
  type = object({
    region             = string
    vpc_cidr           = string
    availability_zones = list(string)
    repositories       = list(string) # the apps' repositories, as in shared's repository_names
  })
  default = null

  validation {
    condition     = var.secondary == null || can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.secondary.region))
    error_message = "secondary.region must look like an AWS region, e.g. eu-west-1."
  }

  validation {
    condition     = var.secondary == null || try(var.secondary.region != var.region, true)
    error_message = "secondary.region must differ from region (several clusters in one region: another environment or cluster entry)."
  }

  validation {
    condition     = var.secondary == null || try(length(var.secondary.availability_zones) >= var.az_count, false)
    error_message = "secondary.availability_zones must name at least az_count zones of secondary.region."
  }
}
