# Offline unit tests: mocked AWS provider, plan only.
mock_provider "aws" {
  override_data {
    target = data.aws_partition.current
    values = { partition = "aws" }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "123456789012" }
  }
  override_data {
    target = data.aws_region.current
    values = { name = "us-east-1" }
  }

  # Computed attributes are unknown during plan; pin the ones the IRSA
  # policy is built from so the trust policy can be asserted.
  override_resource {
    target          = aws_eks_cluster.this
    override_during = plan
    values = {
      identity              = [{ oidc = [{ issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE" }] }]
      certificate_authority = [{ data = "Q0EK" }]
    }
  }
  override_resource {
    target          = aws_iam_openid_connect_provider.this
    override_during = plan
    values = {
      arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
    }
  }
  override_resource {
    target          = aws_kms_key.this
    override_during = plan
    values = {
      arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
}

variables {
  name                = "deployctl-dev"
  cluster_version     = "1.31"
  vpc_id              = "vpc-12345678"
  private_subnet_ids  = ["subnet-aaaa", "subnet-bbbb"]
  app_namespace       = "api"
  app_service_account = "api"
}

run "defaults" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.version == "1.31"
    error_message = "cluster version not passed through"
  }

  assert {
    condition     = length(aws_eks_cluster.this.enabled_cluster_log_types) == 5
    error_message = "all control plane log types should be enabled by default"
  }

  assert {
    condition     = aws_eks_cluster.this.encryption_config[0].resources == toset(["secrets"]) && aws_eks_cluster.this.encryption_config[0].provider[0].key_arn == aws_kms_key.this.arn
    error_message = "secrets must be encrypted with the module's KMS key"
  }

  assert {
    condition     = aws_kms_key.this.enable_key_rotation
    error_message = "KMS key rotation must be enabled"
  }

  assert {
    condition     = aws_eks_node_group.default.scaling_config[0].min_size == 1 && aws_eks_node_group.default.scaling_config[0].max_size == 3
    error_message = "node group scaling not passed through"
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.node) == 3 && contains(keys(aws_iam_role_policy_attachment.cluster), "AmazonEKSClusterPolicy")
    error_message = "managed policies missing"
  }

  assert {
    condition     = one(aws_iam_openid_connect_provider.this.thumbprint_list) == "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
    error_message = "default OIDC thumbprint not used"
  }

  assert {
    condition = (
      jsondecode(aws_iam_role.app.assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub"] == "system:serviceaccount:api:api" &&
      jsondecode(aws_iam_role.app.assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:aud"] == "sts.amazonaws.com"
    )
    error_message = "IRSA trust policy must be conditioned on the service account sub and sts audience"
  }

  assert {
    condition     = jsondecode(aws_iam_role.app.assume_role_policy).Statement[0].Action == "sts:AssumeRoleWithWebIdentity"
    error_message = "IRSA trust policy must use AssumeRoleWithWebIdentity"
  }
}

run "private_only_endpoint" {
  command = plan

  variables {
    endpoint_public_access = false
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access == false && aws_eks_cluster.this.vpc_config[0].endpoint_private_access == true
    error_message = "endpoint access flags not passed through"
  }
}

run "rejects_bad_cluster_version" {
  command = plan

  variables {
    cluster_version = "1.31.2"
  }

  expect_failures = [var.cluster_version]
}

run "rejects_bad_service_account" {
  command = plan

  variables {
    app_service_account = "Not_Valid"
  }

  expect_failures = [var.app_service_account]
}

run "rejects_inconsistent_node_sizes" {
  command = plan

  variables {
    node_min_size     = 3
    node_desired_size = 2
    node_max_size     = 4
  }

  expect_failures = [var.node_desired_size]
}

run "rejects_bad_log_type" {
  command = plan

  variables {
    enabled_cluster_log_types = ["api", "everything"]
  }

  expect_failures = [var.enabled_cluster_log_types]
}

run "rejects_single_subnet" {
  command = plan

  variables {
    private_subnet_ids = ["subnet-aaaa"]
  }

  expect_failures = [var.private_subnet_ids]
}
