# Offline unit tests of who may assume which role and what each may do: plan only, on the rendered policies.
# The real provider, offline: the policy documents are rendered locally and a plan calls no AWS API.
# moto (tests/lab/test_iam.py) enforces what it can evaluate (S3 by object ARN, STS, IAM by role); what it cannot
# (conditions, permissions boundaries, resource ARNs of other services) is asserted here on the JSON.
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "offline"
  secret_key                  = "offline"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

variables {
  github_repository = "acme/api"
  environment       = "dev"
  account_id        = "234567890123"
  state_bucket      = "acme-api-tfstate-dev"
  repository_arns   = ["arn:aws:ecr:us-east-1:123456789012:repository/api"]
  oidc_provider_arn = "arn:aws:iam::234567890123:oidc-provider/token.actions.githubusercontent.com"
  reader_principals = ["arn:aws:iam::345678901234:role/deployctl-ci/deployctl-prod-deploy"]
}

run "dev_account" {
  command = plan

  assert {
    condition     = join(" ", sort(keys(local.roles))) == "dev-deploy dev-plan dev-plan-pr dev-reader"
    error_message = "a deployable environment's account: plan-pr, plan, deploy, and the reader its promotion target assumes"
  }

  assert {
    condition     = jsonencode(output.trusted_subjects["dev-deploy"]) == jsonencode(["repo:acme/api:environment:dev:job_workflow_ref:acme/api/.github/workflows/pipeline.yml@refs/heads/main"])
    error_message = "dev deploys only from main's pipeline, in a job of the dev environment"
  }

  assert {
    condition     = jsonencode(output.trusted_subjects["dev-plan-pr"]) == jsonencode(["repo:acme/api:pull_request:job_workflow_ref:acme/api/.github/workflows/pipeline.yml@refs/pull/*/merge"])
    error_message = "pull requests plan with their own role"
  }

  assert {
    condition     = jsonencode(output.trusted_subjects["dev-plan"]) == jsonencode(["repo:acme/api:ref:refs/heads/main:job_workflow_ref:acme/api/.github/workflows/pipeline.yml@refs/heads/main"])
    error_message = "main's plan trusts main's pipeline only"
  }

  assert {
    condition     = !contains(keys(output.trusted_subjects), "dev-reader") && jsondecode(output.policies["dev-reader"].trust).Statement[0].Principal.AWS == "arn:aws:iam::345678901234:role/deployctl-ci/deployctl-prod-deploy"
    error_message = "the reader is assumed by prod's deploy role only, never by a GitHub token"
  }

  assert {
    condition     = alltrue([for role in aws_iam_role.this : role.permissions_boundary == "arn:aws:iam::234567890123:policy/deployctl-ci/deployctl-boundary" && role.path == "/deployctl-ci/"])
    error_message = "every CI role carries the account's permissions boundary, under the CI path"
  }

  assert {
    condition = alltrue(flatten([
      for key, p in output.policies : [for s in jsondecode(p.policy).Statement : s.Effect == "Deny" || !contains(flatten([s.Action]), "*")]
    ]))
    error_message = "no role is allowed *"
  }

  # A pull request's role writes nothing at all, lock files included, and reads no ledger or lock.
  assert {
    condition = alltrue([
      for s in jsondecode(output.policies["dev-plan-pr"].policy).Statement : s.Effect == "Deny" || length(setintersection(flatten([s.Action]), ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"])) == 0
    ])
    error_message = "the plan-pr role is allowed no S3 write"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["dev-plan-pr"].policy).Statement :
      s.Effect == "Deny" && contains(flatten([s.Action]), "s3:PutObject") && contains(flatten([s.Action]), "s3:DeleteObject") && flatten([s.Resource]) == ["arn:aws:s3:::acme-api-tfstate-dev/*"]
    ])
    error_message = "the plan-pr role is denied every object write of the bucket (a lock file is one)"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["dev-plan-pr"].policy).Statement :
      s.Effect == "Allow" && flatten([s.Action]) == ["s3:GetObject"] && flatten([s.Resource]) == ["arn:aws:s3:::acme-api-tfstate-dev/dev/*"]
    ])
    error_message = "a pull request plans dev with dev's state (read only)"
  }

  # The deploy role changes IAM only for the cluster's roles, and only with the boundary attached.
  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement :
      s.Effect == "Allow" && contains(flatten([s.Action]), "iam:CreateRole") && flatten([s.Resource]) == ["arn:aws:iam::234567890123:role/deployctl-dev-*"]
      && try(s.Condition.StringEquals["iam:PermissionsBoundary"], "") == "arn:aws:iam::234567890123:policy/deployctl-ci/deployctl-boundary"
    ])
    error_message = "the deploy role creates roles only named for dev's cluster, and only with the boundary"
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement : [
        for a in flatten([s.Action]) : !(startswith(a, "iam:") && s.Effect == "Allow") || alltrue([for r in flatten([s.Resource]) : !startswith(r, "arn:aws:iam::234567890123:role/deployctl-ci/") && r != "*"])
      ]
    ]))
    error_message = "no IAM action of the deploy role reaches the CI roles or every resource"
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement : [
        for r in flatten([s.Resource]) : !strcontains(r, "345678901234") && !strcontains(r, "acme-api-tfstate-prod")
      ]
    ]))
    error_message = "dev's deploy role names nothing of prod's account"
  }

  assert {
    condition = alltrue([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement : s.Effect == "Deny" || !contains(flatten([s.Action]), "sts:AssumeRole")
    ])
    error_message = "dev's deploy role assumes no other role (it cannot chain into another account)"
  }

  assert {
    condition = alltrue([
      for s in jsondecode(output.policies["dev-reader"].policy).Statement : s.Effect == "Deny" || alltrue([for a in flatten([s.Action]) : contains(["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration", "eks:DescribeCluster"], a)])
    ])
    error_message = "the reader only reads: dev's ledger and dev's cluster"
  }

  assert {
    condition     = jsonencode(output.github_environment_policy.branches) == jsonencode(["main"]) && length(output.github_environment_policy.tags) == 0
    error_message = "dev deploys from main only"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0
    error_message = "an existing OIDC provider is reused"
  }
}

run "prod_account" {
  command = plan

  variables {
    environment             = "prod"
    account_id              = "345678901234"
    state_bucket            = "acme-api-tfstate-prod"
    protected               = true
    reader_principals       = []
    promotion_source_reader = "arn:aws:iam::234567890123:role/deployctl-ci/deployctl-dev-reader"
    oidc_provider_arn       = null
  }

  assert {
    condition     = join(" ", sort(keys(local.roles))) == "prod-deploy prod-plan prod-plan-pr"
    error_message = "prod: plan-pr, plan, deploy (no reader: nothing promotes from prod)"
  }

  assert {
    condition = jsonencode(output.trusted_subjects["prod-deploy"]) == jsonencode([
      "repo:acme/api:environment:prod:job_workflow_ref:acme/api/.github/workflows/pipeline.yml@refs/tags/release-*",
      "repo:acme/api:environment:prod:job_workflow_ref:acme/api/.github/workflows/apply-prod.yml@refs/heads/main",
    ])
    error_message = "prod's deploy role: the pipeline of a release-* tag (promote) or apply-prod from main (a reviewed plan), in a prod job"
  }

  assert {
    condition     = jsonencode(output.github_environment_policy.tags) == jsonencode(["release-*"]) && output.github_environment_policy.required_reviewers
    error_message = "prod's jobs run from release-* tags and main, after a review"
  }

  # A pull request never reads prod's state: only the empty pull-requests/ key, and prod's state is denied.
  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["prod-plan-pr"].policy).Statement :
      s.Effect == "Allow" && flatten([s.Action]) == ["s3:GetObject"] && flatten([s.Resource]) == ["arn:aws:s3:::acme-api-tfstate-prod/pull-requests/prod/*"]
      ]) && anytrue([
      for s in jsondecode(output.policies["prod-plan-pr"].policy).Statement :
      s.Effect == "Deny" && contains(flatten([s.Action]), "s3:GetObject") && contains(flatten([s.Resource]), "arn:aws:s3:::acme-api-tfstate-prod/prod/*")
    ])
    error_message = "prod's plan-pr role reads no prod state"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["prod-deploy"].policy).Statement :
      s.Effect == "Allow" && contains(flatten([s.Action]), "ecr:PutImage") && flatten([s.Resource]) == ["arn:aws:ecr:us-east-1:123456789012:repository/api"]
    ])
    error_message = "prod's deploy role tags release images in the shared repositories"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["prod-deploy"].policy).Statement :
      s.Effect == "Allow" && flatten([s.Action]) == ["sts:AssumeRole"] && flatten([s.Resource]) == ["arn:aws:iam::234567890123:role/deployctl-ci/deployctl-dev-reader"]
    ])
    error_message = "prod's deploy role reads dev's evidence through dev's reader role, and assumes nothing else"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 1
    error_message = "the GitHub OIDC provider is created when none is given"
  }
}

run "shared_account" {
  command = plan

  variables {
    environment       = "shared"
    account_id        = "123456789012"
    state_bucket      = "acme-api-tfstate-shared"
    terraform_only    = true
    build_role        = true
    reader_principals = []
    ci_admin_roles    = ["arn:aws:iam::123456789012:role/deployctl-ci-admin", "arn:aws:iam::234567890123:role/deployctl-ci-admin"]
  }

  assert {
    condition     = join(" ", sort(keys(local.roles))) == "build shared-deploy"
    error_message = "shared: its deploy role and the build role"
  }

  assert {
    condition     = jsonencode(output.trusted_subjects["shared-deploy"]) == jsonencode(["repo:acme/api:environment:shared:job_workflow_ref:acme/api/.github/workflows/pipeline.yml@refs/heads/shared-terraform"])
    error_message = "shared is applied only from its branch, in a job of the shared environment"
  }

  assert {
    condition     = output.github_environment_policy.required_reviewers
    error_message = "shared (it holds every account's CI roles) needs required reviewers like prod"
  }

  assert {
    condition = alltrue([
      for s in jsondecode(output.policies["shared-deploy"].policy).Statement : s.Effect == "Deny" || alltrue([for a in flatten([s.Action]) : !startswith(a, "iam:")])
    ])
    error_message = "the shared deploy role changes no IAM itself: the CI roles only through each account's ci-admin role"
  }

  assert {
    condition     = jsonencode(output.trusted_subjects["build"]) == jsonencode(["repo:acme/api:ref:refs/heads/main:job_workflow_ref:acme/api/.github/workflows/pipeline.yml@refs/heads/main"])
    error_message = "the image build trusts main's pipeline only"
  }
}

# The boundary is what even the apply role cannot get around: no role without it, no change to it, to the CI roles
# or to the OIDC provider, no user credentials, no ledger delete. moto does not evaluate boundaries: asserted here.
run "boundary" {
  command = plan

  assert {
    condition = anytrue([
      for s in jsondecode(data.aws_iam_policy_document.boundary.json).Statement :
      s.Effect == "Deny" && contains(flatten([s.Action]), "iam:CreateRole") && contains(flatten([s.Action]), "iam:AttachRolePolicy")
      && try(s.Condition.StringNotEquals["iam:PermissionsBoundary"], "") == "arn:aws:iam::234567890123:policy/deployctl-ci/deployctl-boundary"
    ])
    error_message = "no role may be created, or given a policy, without the boundary"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(data.aws_iam_policy_document.boundary.json).Statement :
      s.Effect == "Deny" && contains(flatten([s.Action]), "iam:CreatePolicyVersion") && contains(flatten([s.Action]), "iam:PutRolePolicy")
      && length(setsubtract(["arn:aws:iam::234567890123:policy/deployctl-ci/deployctl-boundary", "arn:aws:iam::234567890123:role/deployctl-ci/*", "arn:aws:iam::234567890123:oidc-provider/token.actions.githubusercontent.com"], flatten([s.Resource]))) == 0
    ])
    error_message = "the boundary, the CI roles and the GitHub OIDC provider cannot be changed by a bounded role"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(data.aws_iam_policy_document.boundary.json).Statement :
      s.Effect == "Deny" && contains(flatten([s.Action]), "iam:DeleteRolePermissionsBoundary")
      ]) && anytrue([
      for s in jsondecode(data.aws_iam_policy_document.boundary.json).Statement :
      s.Effect == "Deny" && contains(flatten([s.Action]), "iam:CreateAccessKey") && contains(flatten([s.Action]), "iam:CreateUser")
    ])
    error_message = "a boundary is never removed, and no long-lived credential is created"
  }

  assert {
    condition = !anytrue(flatten([
      for s in jsondecode(data.aws_iam_policy_document.boundary.json).Statement : [
        for a in flatten([s.Action]) : s.Effect == "Allow" && contains(["*", "*:*", "iam:*", "sts:*", "organizations:*"], a)
      ]
    ]))
    error_message = "the boundary itself allows no *, iam:*, sts:* or organizations:*"
  }
}

# The ledger is append-only in fact (README "The ledger"): no role may delete an entry, erase a version, or
# shorten a retention there; an explicit Deny in every role's policy.
run "ledger_append_only" {
  command = plan

  assert {
    condition = alltrue([
      for key, p in output.policies : anytrue([
        for s in jsondecode(p.policy).Statement : (
          s.Effect == "Deny"
          && length(setsubtract(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"], flatten([s.Action]))) == 0
          && contains(flatten([s.Resource]), "arn:aws:s3:::acme-api-tfstate-dev/deployctl/history/*")
        )
      ])
    ])
    error_message = "every role is denied deleting, erasing a version of, or retaining ledger entries"
  }

  assert {
    condition = alltrue(flatten([
      for key, p in output.policies : [
        for s in jsondecode(p.policy).Statement : !(
          s.Effect == "Allow"
          && length(setintersection(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention", "s3:*"], flatten([s.Action]))) > 0
          && anytrue([for r in flatten([s.Resource]) : strcontains(r, "deployctl/history") || contains(["*", "arn:aws:s3:::acme-api-tfstate-dev/*", "arn:aws:s3:::acme-api-tfstate-dev/deployctl/*"], r)])
        )
      ]
    ]))
    error_message = "no role's own policy allows a delete or a retention change on the ledger"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement :
      s.Effect == "Allow" && flatten([s.Action]) == ["s3:PutObject"] && flatten([s.Resource]) == ["arn:aws:s3:::acme-api-tfstate-dev/deployctl/history/dev/*"]
    ])
    error_message = "dev's deploy role appends to dev's ledger, and only that"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement :
      s.Effect == "Allow" && contains(flatten([s.Action]), "s3:DeleteObject") && contains(flatten([s.Resource]), "arn:aws:s3:::acme-api-tfstate-dev/deployctl/locks/dev*")
    ])
    error_message = "the lock still deletes its own objects (a released lock, a queue ticket)"
  }

  assert {
    condition = alltrue([
      for key, p in output.policies : anytrue([
        for s in jsondecode(p.policy).Statement : s.Effect == "Deny" && contains(flatten([s.Action]), "s3:PutBucketObjectLockConfiguration") && contains(flatten([s.Resource]), "arn:aws:s3:::acme-api-tfstate-dev")
      ])
    ])
    error_message = "no role may change the bucket's Object Lock retention"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement :
      s.Effect == "Allow" && contains(flatten([s.Action]), "s3:ListBucketVersions") && contains(flatten([s.Action]), "s3:GetBucketObjectLockConfiguration")
    ])
    error_message = "a deploy role lists the ledger's versions (tampering) and reads the bucket's Object Lock"
  }
}

# Extra permissions are judged by what they allow, never by their name: AWS's AdministratorAccess,
# PowerUserAccess and IAMFullAccess documents, renamed, are each refused.
run "refuses_administrator_access_by_content" {
  command = plan
  variables {
    extra_policy_json = [jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })]
  }
  expect_failures = [var.extra_policy_json]
}

run "refuses_power_user_access_by_content" {
  command = plan
  variables {
    extra_policy_json = [jsonencode({ Version = "2012-10-17", Statement = [
      { Effect = "Allow", NotAction = ["iam:*", "organizations:*", "account:*"], Resource = "*" },
      { Effect = "Allow", Action = ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles"], Resource = "*" },
    ] })]
  }
  expect_failures = [var.extra_policy_json]
}

run "refuses_iam_full_access_by_content" {
  command = plan
  variables {
    extra_policy_json = [jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = ["iam:*", "organizations:DescribeAccount"], Resource = "*" }] })]
  }
  expect_failures = [var.extra_policy_json]
}

run "refuses_star_colon_star" {
  command = plan
  variables {
    extra_policy_json = [jsonencode({ Statement = { Effect = "Allow", Action = "*:*", Resource = "arn:aws:s3:::x" } })]
  }
  expect_failures = [var.extra_policy_json]
}

run "refuses_pass_any_role" {
  command = plan
  variables {
    extra_policy_json = [jsonencode({ Statement = [{ Effect = "Allow", Action = ["iam:PassRole"], Resource = ["*"] }] })]
  }
  expect_failures = [var.extra_policy_json]
}

run "accepts_named_actions" {
  command = plan
  variables {
    extra_policy_json = [jsonencode({ Version = "2012-10-17", Statement = [
      { Sid = "AppQueue", Effect = "Allow", Action = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes"], Resource = "arn:aws:sqs:*:234567890123:api-*" },
      { Sid = "NoIam", Effect = "Deny", Action = "iam:*", Resource = "*" },
    ] })]
  }

  assert {
    condition = anytrue([
      for s in jsondecode(output.policies["dev-deploy"].policy).Statement : try(s.Sid, "") == "AppQueue"
    ])
    error_message = "an accepted document is part of the deploy role's policy"
  }
}

run "no_wildcard_repository" {
  command = plan

  variables {
    github_repository = "acme/*"
  }

  expect_failures = [var.github_repository]
}
