# Offline unit tests of who may assume which role and what each may do: plan only.
# The real provider, offline: the policy documents are rendered locally and a plan calls no AWS API.
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
  state_bucket      = "acme-api-tfstate"
  repository_arns   = ["arn:aws:ecr:us-east-1:123456789012:repository/api"]
  environments = {
    shared = { terraform_only = true }
    dev    = {}
    prod   = { protected = true }
  }
}

run "trust_by_subject" {
  command = plan

  assert {
    condition     = join(" ", sort(keys(output.trusted_subjects))) == "build dev-deploy dev-plan dev-plan-pr prod-deploy prod-plan prod-plan-pr shared-deploy"
    error_message = "plan-pr, plan and deploy per deployable environment, deploy only for terraform-only ones, one build role"
  }

  assert {
    condition     = output.trusted_subjects["prod-deploy"] == ["repo:acme/api:environment:prod"]
    error_message = "only jobs of the prod GitHub environment may change prod"
  }

  assert {
    condition     = output.trusted_subjects["prod-plan-pr"] == ["repo:acme/api:pull_request"] && output.trusted_subjects["dev-plan-pr"] == ["repo:acme/api:pull_request"]
    error_message = "pull requests plan with their own role per environment"
  }

  assert {
    condition     = output.trusted_subjects["prod-plan"] == ["repo:acme/api:ref:refs/heads/main"] && output.trusted_subjects["build"] == ["repo:acme/api:ref:refs/heads/main"]
    error_message = "main's plan (the reviewed prod plan) and the image build trust main only"
  }

  assert {
    condition = alltrue([
      for key, subjects in output.trusted_subjects : !contains(subjects, "repo:acme/api:pull_request") if !endswith(key, "-plan-pr")
    ])
    error_message = "a pull request may assume only the read-only plan-pr roles"
  }

  assert {
    condition     = alltrue(flatten([for subjects in values(output.trusted_subjects) : [for s in subjects : !strcontains(s, "*")]]))
    error_message = "no trusted subject is a wildcard"
  }

  assert {
    condition     = jsonencode(output.github_environment_policies["prod"]) == jsonencode({ branches = ["main"], tags = ["release-*"], required_reviewers = true })
    error_message = "prod's jobs run only from release-* tags and main, after a review"
  }

  assert {
    condition     = length(output.github_environment_policies["dev"].tags) == 0 && output.github_environment_policies["shared"].branches == ["shared-terraform"]
    error_message = "dev deploys from main only, shared from its branch only"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 1
    error_message = "the GitHub OIDC provider is created when none is given"
  }

  assert {
    condition = alltrue([
      for key, attachment in aws_iam_role_policy_attachment.managed : attachment.policy_arn == "arn:aws:iam::aws:policy/ReadOnlyAccess" if strcontains(key, "-plan")
    ]) && length([for key, a in aws_iam_role_policy_attachment.managed : key if strcontains(key, "-plan")]) == 4
    error_message = "every plan role (pr and main, dev and prod) is ReadOnlyAccess"
  }
}

run "policies" {
  command = plan

  variables {
    oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  }

  assert {
    condition = (
      jsondecode(data.aws_iam_policy_document.trust["prod-deploy"].json).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == "repo:acme/api:environment:prod"
      && jsondecode(data.aws_iam_policy_document.trust["prod-deploy"].json).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    )
    error_message = "the trust compares sub and aud with StringEquals"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0
    error_message = "an existing OIDC provider is reused"
  }

  assert {
    condition = contains(
      [for s in jsondecode(data.aws_iam_policy_document.permissions["prod-plan-pr"].json).Statement : s.Sid if s.Effect == "Deny"],
      "NoOtherEnvironmentsState"
    )
    error_message = "a plan role cannot read another environment's state"
  }
}

run "no_admin_deploy_role" {
  command = plan

  variables {
    environments = { prod = { protected = true, deploy_policy_arns = ["arn:aws:iam::aws:policy/AdministratorAccess"] } }
  }

  expect_failures = [var.environments]
}

run "no_wildcard_repository" {
  command = plan

  variables {
    github_repository = "acme/*"
  }

  expect_failures = [var.github_repository]
}

# The ledger is append-only in fact (README "The ledger"): no role may delete an entry, erase a version, or
# shorten a retention there; an explicit Deny in every role's policy, which no attached policy can lift.
run "ledger_append_only" {
  command = plan

  variables {
    oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    environments = {
      shared = { terraform_only = true }
      dev    = { deploy_policy_arns = ["arn:aws:iam::aws:policy/PowerUserAccess"] }
      prod   = { protected = true }
    }
  }

  assert {
    condition = alltrue([
      for role, doc in data.aws_iam_policy_document.permissions : anytrue([
        for s in jsondecode(doc.json).Statement : (
          s.Effect == "Deny"
          && length(setsubtract(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"], flatten([s.Action]))) == 0
          && contains(flatten([s.Resource]), "arn:aws:s3:::acme-api-tfstate/deployctl/history/*")
        )
      ])
    ])
    error_message = "every role (plan, deploy, build) is denied deleting, erasing a version of, or retaining ledger entries"
  }

  assert {
    condition = alltrue(flatten([
      for role, doc in data.aws_iam_policy_document.permissions : [
        for s in jsondecode(doc.json).Statement : !(
          s.Effect == "Allow"
          && length(setintersection(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention", "s3:*"], flatten([s.Action]))) > 0
          && anytrue([for r in flatten([s.Resource]) : strcontains(r, "deployctl/history") || contains(["*", "arn:aws:s3:::acme-api-tfstate/*", "arn:aws:s3:::acme-api-tfstate/deployctl/*"], r)])
        )
      ]
    ]))
    error_message = "no role's own policy allows a delete or a retention change on the ledger"
  }

  assert {
    condition = alltrue([
      for role, doc in data.aws_iam_policy_document.permissions : anytrue([
        for s in jsondecode(doc.json).Statement : s.Effect == "Deny" && contains(flatten([s.Action]), "s3:PutBucketObjectLockConfiguration") && contains(flatten([s.Resource]), "arn:aws:s3:::acme-api-tfstate")
      ])
    ])
    error_message = "no role may change the bucket's Object Lock retention"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(data.aws_iam_policy_document.permissions["dev-deploy"].json).Statement :
      s.Effect == "Allow" && flatten([s.Action]) == ["s3:PutObject"] && flatten([s.Resource]) == ["arn:aws:s3:::acme-api-tfstate/deployctl/history/dev/*"]
    ])
    error_message = "dev's deploy role appends to dev's ledger, and only that"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(data.aws_iam_policy_document.permissions["dev-deploy"].json).Statement :
      s.Effect == "Allow" && contains(flatten([s.Action]), "s3:DeleteObject") && contains(flatten([s.Resource]), "arn:aws:s3:::acme-api-tfstate/deployctl/locks/dev*")
    ])
    error_message = "the lock still deletes its own objects (a released lock, a queue ticket)"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(data.aws_iam_policy_document.permissions["prod-deploy"].json).Statement :
      s.Effect == "Allow" && contains(flatten([s.Action]), "s3:ListBucketVersions") && contains(flatten([s.Action]), "s3:GetBucketObjectLockConfiguration")
    ])
    error_message = "a deploy role lists the ledger's versions (tampering) and reads the bucket's Object Lock"
  }
}
