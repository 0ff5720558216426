# dev: deployctl passes `environment` and `region` (from [tool.deployctl.environments.dev]).
# Small and cheap: 2 AZs, one shared NAT gateway, no flow logs, 30-day logs.
# dev's own AWS account (terraform/shared's accounts; pyproject.toml's aws.account_id).
account_id = "234567890123"

vpc_cidr                 = "10.10.0.0/16"
az_count                 = 2
availability_zones       = ["us-east-1a", "us-east-1b", "us-east-1c"]
single_nat_gateway       = true
enable_flow_logs         = false
flow_logs_retention_days = 30

cluster_version              = "1.31"
endpoint_private_access      = true
endpoint_public_access       = true
endpoint_public_access_cidrs = ["0.0.0.0/0"]
cluster_log_retention_days   = 30

node_instance_types = ["t3.medium"]
node_capacity_type  = "SPOT"
node_min_size       = 1
node_max_size       = 3
node_desired_size   = 2

app_namespace       = "api"
app_service_account = "api"
