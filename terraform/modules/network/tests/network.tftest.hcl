# Offline unit tests: mocked AWS provider, plan only.
mock_provider "aws" {
  override_data {
    target = data.aws_availability_zones.available
    values = {
      names = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
    }
  }
}

variables {
  name               = "deployctl-test"
  cidr               = "10.20.0.0/16"
  cluster_name       = "deployctl-test"
  availability_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

run "dev_like_single_nat" {
  command = plan

  variables {
    az_count           = 2
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_subnet.public) == 2 && length(aws_subnet.private) == 2
    error_message = "expected one public and one private subnet per AZ"
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_eip.nat) == 1
    error_message = "single_nat_gateway must create exactly one NAT gateway"
  }

  assert {
    condition     = length(aws_route_table.private) == 2
    error_message = "expected one private route table per AZ"
  }

  assert {
    condition     = aws_subnet.private[0].cidr_block == "10.20.0.0/19" && aws_subnet.public[0].cidr_block == "10.20.224.0/22"
    error_message = "unexpected address plan for a /16"
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.tags["kubernetes.io/role/elb"] == "1" && s.tags["kubernetes.io/cluster/deployctl-test"] == "shared"])
    error_message = "public subnets need the kubernetes.io/role/elb and cluster tags"
  }

  assert {
    condition     = alltrue([for s in aws_subnet.private : s.tags["kubernetes.io/role/internal-elb"] == "1" && !contains(keys(s.tags), "kubernetes.io/role/elb")])
    error_message = "private subnets need kubernetes.io/role/internal-elb only"
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch == false])
    error_message = "public subnets must not auto-assign public IPs"
  }

  assert {
    condition     = length(aws_flow_log.this) == 0
    error_message = "flow logs are off by default"
  }
}

run "prod_like_nat_per_az_with_flow_logs" {
  command = plan

  variables {
    az_count           = 3
    single_nat_gateway = false
    enable_flow_logs   = true
  }

  assert {
    condition     = length(aws_subnet.public) == 3 && length(aws_subnet.private) == 3
    error_message = "expected 3 public and 3 private subnets"
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 3
    error_message = "expected one NAT gateway per AZ"
  }

  assert {
    condition     = join(",", [for s in aws_subnet.private : s.availability_zone]) == "us-east-1a,us-east-1b,us-east-1c"
    error_message = "private subnets must be spread over distinct AZs"
  }

  assert {
    condition     = length(aws_flow_log.this) == 1 && aws_flow_log.this[0].traffic_type == "ALL"
    error_message = "flow log expected when enable_flow_logs = true"
  }
}

run "rejects_az_count_zero" {
  command = plan

  variables {
    az_count = 0
  }

  expect_failures = [var.az_count]
}

run "rejects_az_count_too_large" {
  command = plan

  variables {
    az_count = 7
  }

  expect_failures = [var.az_count]
}

run "rejects_invalid_cidr" {
  command = plan

  variables {
    cidr = "10.0.0.0/33"
  }

  expect_failures = [var.cidr]
}

run "rejects_too_small_cidr" {
  command = plan

  variables {
    cidr = "10.0.0.0/24"
  }

  expect_failures = [var.cidr]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "Bad_Name"
  }

  expect_failures = [var.name]
}

run "rejects_az_count_above_pinned_zones" {
  command = plan

  variables {
    az_count           = 3
    availability_zones = ["us-east-1a", "us-east-1b"]
  }

  expect_failures = [var.az_count]
}

run "rejects_unavailable_zone" {
  command = plan

  # The region reports only a and b as available; c is pinned and used.
  override_data {
    target = data.aws_availability_zones.available
    values = { names = ["us-east-1a", "us-east-1b"] }
  }

  variables {
    az_count = 3
  }

  expect_failures = [data.aws_availability_zones.available]
}
