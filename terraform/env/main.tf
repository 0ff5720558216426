# The one root of every environment (dev, prod): environments differ only by
# their variables file (dev.tfvars, prod.tfvars) and their state key.

locals {
  name = "${var.project}-${var.environment}"
  # The account's permissions boundary (terraform/shared creates it with the account's CI roles): every role this
  # root creates carries it, and the deploy role that applies this root may create roles only with it.
  permissions_boundary = var.account_id == null ? null : "arn:aws:iam::${var.account_id}:policy/${var.project}-ci/${var.project}-boundary"

  # Every IAM role of the environment, name -> its boundary (tests/regions.tftest.hcl).
  roles = merge(
    module.cluster.iam_roles, module.network.iam_roles,
    merge(concat([for c in module.secondary_cluster : c.iam_roles], [for n in module.secondary_network : n.iam_roles])...),
  )
}

module "network" {
  source = "../modules/network"

  name                     = local.name
  cidr                     = var.vpc_cidr
  az_count                 = var.az_count
  availability_zones       = var.availability_zones
  single_nat_gateway       = var.single_nat_gateway
  cluster_name             = local.name
  enable_flow_logs         = var.enable_flow_logs
  flow_logs_retention_days = var.flow_logs_retention_days
  permissions_boundary     = local.permissions_boundary
}

module "cluster" {
  source = "../modules/cluster"

  name               = local.name
  cluster_version    = var.cluster_version
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids

  endpoint_private_access      = var.endpoint_private_access
  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  log_retention_days           = var.cluster_log_retention_days

  node_instance_types = var.node_instance_types
  node_capacity_type  = var.node_capacity_type
  node_min_size       = var.node_min_size
  node_max_size       = var.node_max_size
  node_desired_size   = var.node_desired_size

  app_namespace        = var.app_namespace
  app_service_account  = var.app_service_account
  app_policy_arns      = var.app_policy_arns
  permissions_boundary = local.permissions_boundary
}

# ---------------------------------------------------------------- another region (var.secondary)
# Same shape as the primary region: network + cluster, plus the region's own ECR repositories (images are copied
# there by `deployctl promote`, missing blobs only, so the region's nodes pull from their own region).

locals {
  secondary      = var.secondary == null ? [] : [var.secondary]
  secondary_name = var.secondary == null ? "" : "${local.name}-${var.secondary.region}"
}

module "secondary_network" {
  source    = "../modules/network"
  count     = length(local.secondary)
  providers = { aws = aws.secondary }

  name                     = local.secondary_name
  cidr                     = local.secondary[count.index].vpc_cidr
  az_count                 = var.az_count
  availability_zones       = local.secondary[count.index].availability_zones
  single_nat_gateway       = var.single_nat_gateway
  cluster_name             = local.secondary_name
  enable_flow_logs         = var.enable_flow_logs
  flow_logs_retention_days = var.flow_logs_retention_days
  permissions_boundary     = local.permissions_boundary
}

module "secondary_cluster" {
  source    = "../modules/cluster"
  count     = length(local.secondary)
  providers = { aws = aws.secondary }

  name               = local.secondary_name
  cluster_version    = var.cluster_version
  vpc_id             = module.secondary_network[count.index].vpc_id
  private_subnet_ids = module.secondary_network[count.index].private_subnet_ids

  endpoint_private_access      = var.endpoint_private_access
  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  log_retention_days           = var.cluster_log_retention_days

  node_instance_types = var.node_instance_types
  node_capacity_type  = var.node_capacity_type
  node_min_size       = var.node_min_size
  node_max_size       = var.node_max_size
  node_desired_size   = var.node_desired_size

  app_namespace        = var.app_namespace
  app_service_account  = var.app_service_account
  app_policy_arns      = var.app_policy_arns
  permissions_boundary = local.permissions_boundary
}

module "secondary_registry" {
  source    = "../modules/registry"
  count     = length(local.secondary)
  providers = { aws = aws.secondary }

  repository_names = local.secondary[count.index].repositories
}
