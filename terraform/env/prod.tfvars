# prod: deployctl passes `environment` and `region` (from [tool.deployctl.environments.prod]).
# Highly available: 3 AZs, one NAT gateway per AZ, flow logs on.
# prod's own AWS account (terraform/shared's accounts; pyproject.toml's aws.account_id).
account_id = "345678901234"

vpc_cidr                 = "10.20.0.0/16"
az_count                 = 3
availability_zones       = ["us-east-1a", "us-east-1b", "us-east-1c"]
single_nat_gateway       = false
enable_flow_logs         = true
flow_logs_retention_days = 365

cluster_version         = "1.31"
endpoint_private_access = true
endpoint_public_access  = true
# Narrow to the CI runners' / VPN egress CIDRs before going live.
endpoint_public_access_cidrs = ["0.0.0.0/0"]
cluster_log_retention_days   = 365

node_instance_types = ["m6i.large", "m5.large"]
node_capacity_type  = "ON_DEMAND"
node_min_size       = 3
node_max_size       = 9
node_desired_size   = 3

app_namespace       = "api"
app_service_account = "api"
