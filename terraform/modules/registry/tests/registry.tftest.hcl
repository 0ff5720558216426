# Offline unit tests: mocked AWS provider, plan only.
mock_provider "aws" {
  override_data {
    target = data.aws_partition.current
    values = { partition = "aws" }
  }
}

variables {
  repository_names = ["api", "worker"]
}

run "defaults" {
  command = plan

  assert {
    condition     = length(aws_ecr_repository.this) == 2
    error_message = "one repository per name expected"
  }

  assert {
    condition     = alltrue([for r in aws_ecr_repository.this : r.image_tag_mutability == "IMMUTABLE"])
    error_message = "tags must be immutable"
  }

  assert {
    condition     = alltrue([for r in aws_ecr_repository.this : r.image_scanning_configuration[0].scan_on_push && r.encryption_configuration[0].encryption_type == "KMS"])
    error_message = "scan on push and KMS encryption required"
  }

  assert {
    condition     = length(aws_ecr_repository_policy.readers) == 0
    error_message = "no repository policy when reader_account_ids is empty"
  }

  # release-* must be claimed by the highest-priority rule, which does not
  # expire anything in practice; every expiring rule must come after it.
  assert {
    condition = (
      [for r in jsondecode(aws_ecr_lifecycle_policy.this["api"].policy).rules : r.rulePriority if contains(try(r.selection.tagPrefixList, []), "release-")][0]
      == min([for r in jsondecode(aws_ecr_lifecycle_policy.this["api"].policy).rules : r.rulePriority]...)
    )
    error_message = "the release-* rule must have the highest priority (lowest rulePriority)"
  }

  assert {
    condition = alltrue([
      for r in jsondecode(aws_ecr_lifecycle_policy.this["api"].policy).rules :
      r.selection.countType == "imageCountMoreThan" && r.selection.countNumber >= 10000
      if contains(try(r.selection.tagPrefixList, []), "release-")
    ])
    error_message = "the release-* rule must never expire images in practice"
  }

  assert {
    condition = length([
      for r in jsondecode(aws_ecr_lifecycle_policy.this["api"].policy).rules : r
      if r.selection.tagStatus == "untagged" && r.selection.countType == "sinceImagePushed" && r.selection.countNumber == 7
    ]) == 1
    error_message = "untagged images must expire after untagged_expire_days"
  }

  assert {
    condition = length([
      for r in jsondecode(aws_ecr_lifecycle_policy.this["api"].policy).rules : r
      if r.selection.tagStatus == "tagged" && try(r.selection.tagPatternList, null) == ["*"] && r.selection.countNumber == 90
    ]) == 1
    error_message = "commit-sha tagged images must expire after commit_tag_expire_days"
  }

  assert {
    condition     = length(distinct([for r in jsondecode(aws_ecr_lifecycle_policy.this["api"].policy).rules : r.rulePriority])) == 3
    error_message = "rule priorities must be unique"
  }
}

run "reader_accounts" {
  command = plan

  variables {
    reader_account_ids = ["111111111111", "222222222222"]
  }

  assert {
    condition     = length(aws_ecr_repository_policy.readers) == 2
    error_message = "one repository policy per repository expected"
  }

  assert {
    condition = (
      jsondecode(aws_ecr_repository_policy.readers["api"].policy).Statement[0].Principal.AWS
      == ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]
    )
    error_message = "reader accounts must be the policy principals"
  }

  assert {
    condition     = !contains(jsondecode(aws_ecr_repository_policy.readers["api"].policy).Statement[0].Action, "ecr:PutImage")
    error_message = "readers must not be able to push"
  }
}

run "promotion_target_tags" {
  command = plan

  variables {
    reader_account_ids = ["234567890123", "345678901234"]
    tagger_role_arns   = ["arn:aws:iam::345678901234:role/deployctl-ci/deployctl-prod-deploy"]
  }

  assert {
    condition = anytrue([
      for s in jsondecode(aws_ecr_repository_policy.readers["api"].policy).Statement :
      s.Principal.AWS == ["arn:aws:iam::345678901234:role/deployctl-ci/deployctl-prod-deploy"] && contains(s.Action, "ecr:PutImage")
    ])
    error_message = "the promotion target's deploy role (another account) may put the release tag"
  }

  assert {
    condition = alltrue([
      for s in jsondecode(aws_ecr_repository_policy.readers["api"].policy).Statement :
      !contains(s.Action, "ecr:PutImage") || s.Principal.AWS == ["arn:aws:iam::345678901234:role/deployctl-ci/deployctl-prod-deploy"]
    ])
    error_message = "no account root, and no other role, may push"
  }
}

run "rejects_bad_account_id" {
  command = plan

  variables {
    reader_account_ids = ["12345"]
  }

  expect_failures = [var.reader_account_ids]
}

run "rejects_bad_repository_name" {
  command = plan

  variables {
    repository_names = ["API"]
  }

  expect_failures = [var.repository_names]
}

run "rejects_release_pattern_for_expiry" {
  command = plan

  variables {
    commit_tag_patterns = ["release-*"]
  }

  expect_failures = [var.commit_tag_patterns]
}
