variable "name" {
  description = "Name prefix for all network resources (usually <project>-<environment>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}[a-z0-9]$", var.name))
    error_message = "name must be 3-40 chars of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "cidr" {
  description = "IPv4 CIDR block of the VPC. Prefix length /16 to /22 so every derived subnet is at least /28."
  type        = string

  validation {
    condition = (
      can(cidrhost(var.cidr, 0)) &&
      can(regex("^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$", var.cidr)) &&
      try(tonumber(split("/", var.cidr)[1]) >= 16 && tonumber(split("/", var.cidr)[1]) <= 22, false)
    )
    error_message = "cidr must be a valid IPv4 CIDR with a prefix length between /16 and /22."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread subnets over (one public and one private subnet per AZ)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 1 && var.az_count <= 6 && floor(var.az_count) == var.az_count && var.az_count <= length(var.availability_zones)
    error_message = "az_count must be a whole number between 1 and 6 and not exceed the number of availability_zones."
  }
}

variable "availability_zones" {
  description = "Candidate availability zone names, in order of preference; the first az_count are used."
  type        = list(string)

  validation {
    condition     = length(distinct(var.availability_zones)) == length(var.availability_zones) && alltrue([for z in var.availability_zones : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$", z))])
    error_message = "availability_zones must be distinct AZ names such as us-east-1a."
  }
}

variable "single_nat_gateway" {
  description = "true: one NAT gateway shared by all AZs (cheap, AZ failure breaks egress). false: one NAT gateway per AZ."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "EKS cluster name used for the kubernetes.io/cluster/<name> subnet tag. null to omit the tag."
  type        = string
  default     = null
}

variable "enable_flow_logs" {
  description = "Send VPC flow logs (ALL traffic) to a CloudWatch log group."
  type        = bool
  default     = false
}

variable "flow_logs_retention_days" {
  description = "Retention of the flow log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs_retention_days)
    error_message = "flow_logs_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "flow_logs_kms_key_arn" {
  description = "Optional customer-managed KMS key for the flow log group; null uses CloudWatch Logs' service-managed encryption."
  type        = string
  default     = null
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
