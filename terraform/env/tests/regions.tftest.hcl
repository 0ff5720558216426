# Offline tests of the environment root (mocked providers, plan only): one region by default, and with
# var.secondary a second network, cluster and ECR registry created through the provider alias aws.secondary.
mock_provider "aws" {
  override_data {
    target = module.network.data.aws_availability_zones.available
    values = { names = ["us-east-1a", "us-east-1b", "us-east-1c"] }
  }
  override_data {
    target = module.cluster.data.aws_partition.current
    values = { partition = "aws" }
  }
  override_data {
    target = module.cluster.data.aws_region.current
    values = { name = "us-east-1" }
  }
}

mock_provider "aws" {
  alias = "secondary"

  override_data {
    target = module.secondary_network[0].data.aws_availability_zones.available
    values = { names = ["eu-west-1a", "eu-west-1b", "eu-west-1c"] }
  }
  override_data {
    target = module.secondary_cluster[0].data.aws_partition.current
    values = { partition = "aws" }
  }
  override_data {
    target = module.secondary_cluster[0].data.aws_region.current
    values = { name = "eu-west-1" }
  }
  override_data {
    target = module.secondary_registry[0].data.aws_partition.current
    values = { partition = "aws" }
  }
}

variables {
  region              = "us-east-1"
  environment         = "prod"
  vpc_cidr            = "10.20.0.0/16"
  az_count            = 2
  availability_zones  = ["us-east-1a", "us-east-1b", "us-east-1c"]
  single_nat_gateway  = true
  cluster_version     = "1.31"
  node_instance_types = ["m6i.large"]
  node_min_size       = 1
  node_max_size       = 3
  node_desired_size   = 1
}

run "one_region" {
  command = plan

  assert {
    condition     = length(module.secondary_cluster) == 0 && length(module.secondary_registry) == 0
    error_message = "no secondary region is configured: nothing is created there"
  }
}

run "two_regions" {
  command = plan

  variables {
    secondary = {
      region             = "eu-west-1"
      vpc_cidr           = "10.21.0.0/16"
      availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
      repositories       = ["api", "worker"]
    }
  }

  assert {
    condition     = length(module.secondary_network) == 1 && length(module.secondary_cluster) == 1
    error_message = "the secondary region gets its own network and cluster"
  }

  assert {
    condition     = length(module.secondary_registry[0].repository_arns) == 2
    error_message = "the secondary region gets the apps' ECR repositories"
  }

  assert {
    condition     = keys(output.clusters) == ["eu-west-1", "us-east-1"]
    error_message = "output clusters names both regions"
  }
}

run "the_secondary_region_differs" {
  command = plan

  variables {
    secondary = {
      region             = "us-east-1"
      vpc_cidr           = "10.21.0.0/16"
      availability_zones = ["us-east-1a", "us-east-1b"]
      repositories       = ["api"]
    }
  }

  expect_failures = [var.secondary]
}

# One account per environment: every role this root creates, in every region, carries the account's permissions
# boundary (the deploy role that applies this root may create roles only with it: modules/ci-roles).
run "every_role_has_the_boundary" {
  command = plan

  variables {
    account_id       = "345678901234"
    enable_flow_logs = true
    secondary = {
      region             = "eu-west-1"
      vpc_cidr           = "10.21.0.0/16"
      availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
      repositories       = ["api"]
    }
  }

  assert {
    condition = length(local.roles) == 8 && alltrue([
      for name, boundary in local.roles : boundary == "arn:aws:iam::345678901234:policy/deployctl-ci/deployctl-boundary"
    ])
    error_message = "every IAM role of the environment (cluster, node, IRSA, flow logs; both regions) carries the account's permissions boundary"
  }

  assert {
    condition     = alltrue([for name in keys(local.roles) : startswith(name, "deployctl-prod-")])
    error_message = "the roles are named <project>-<environment>-...: the deploy role may create only those"
  }
}

run "account_id_is_twelve_digits" {
  command = plan

  variables {
    account_id = "prod"
  }

  expect_failures = [var.account_id]
}
