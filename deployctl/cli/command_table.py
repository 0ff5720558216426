"""The commands other modules of ``deployctl.cli`` define: name -> (module, the first paragraph of its help).

No click here: ``deployctl --help`` lists them from this table without importing a command module (the lazy
group, ``cli.lazy``), and so does the fast path (``deployctl.cli.fast``) without importing click at all.
tests/unit/test_startup.py keeps this table equal to the commands.
"""

from __future__ import annotations

_RELEASE, _TERRAFORM = "deployctl.cli.release_commands", "deployctl.cli.terraform_commands"
COMMANDS = {
    "apply": (
        _TERRAFORM,
        "Apply ENV's saved plan (made by `deployctl plan ENV` at this commit) under the environment lock.",
    ),
    "board": (
        _RELEASE,
        "Write the release board: what runs where (health, drift), recent rollouts, what waits to be promoted.",
    ),
    "bootstrap": (
        _TERRAFORM,
        "Create ENV's terraform state bucket before its first plan: versioned, encrypted, private (idempotent).",
    ),
    "build": (
        _RELEASE,
        "Build the app image once per commit, tagged with the commit sha ('latest' only where it may move), and "
        "record the pushed digest.",
    ),
    "deploy": (
        _RELEASE,
        "Deploy the image of a commit (by digest) to ENV with helm and watch it until every pod is ready.",
    ),
    "destroy": (
        _TERRAFORM,
        "Destroy everything ENV's terraform manages, after showing the plan and a confirmation.",
    ),
    "diff": (_RELEASE, "Show how the live objects in ENV's cluster differ from the chart rendered with ENV's values."),
    "history": (
        _RELEASE,
        "Show what happened to an environment (deploys, promotions, recoveries), newest first.",
    ),
    "lock": (
        _TERRAFORM,
        "Show or break locks: the environment lock (status, break) or terraform's state lock (break --state).",
    ),
    "plan": (
        _TERRAFORM,
        "Plan ENV's terraform and save the plan for `deployctl apply` (destroys and replacements are flagged).",
    ),
    "promote": (
        _RELEASE,
        "Run in prod the exact image (by digest) that main built for a release tag and dev runs.",
    ),
    "sandbox": (
        "deployctl.cli.sandbox_commands",
        "A local stand-in for AWS, the registry and the cluster (moto, OCI registries, kube-apiserver + kwok).",
    ),
    "status": (
        _RELEASE,
        "Show what runs in ENV and whether it is healthy (exit 1 when an app is not): release, rollout, digest.",
    ),
    "verify": (
        _RELEASE,
        "Run ENV's checks (helm test, HTTP, metrics) against what runs now and record the result for the gate.",
    ),
}
