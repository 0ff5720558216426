"""What a promotion's gates judge: the facts found per app, and one gate's verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from deployctl.core.refs import ImageRef, ReleaseTag, Version
from deployctl.promotion.evidence import Evidence

VERIFIED = "verified-in-source"


@dataclass(frozen=True)
class Facts:
    """What was found before anything is judged."""

    release: ReleaseTag
    commit: str
    on_main: bool
    main_ref: str
    source_env: str
    target_env: str
    source_image: ImageRef  # repository + tag (the commit sha) the build pushed
    source_digest: str | None  # what that tag names, None when the build did not push it
    evidence: Evidence | None  # what the source's ledger proves about the digest (None: no digest)
    target_version: Version | None  # the version the target runs now
    target_digest: str | None  # the digest the target runs now
    target_from: str  # ledger | values | none
    target_tag_digest: str | None  # what the release tag names in the target repository
    soak: timedelta = timedelta()  # how long the digest must have run healthy in the source (promote_soak_minutes)
    app: str = ""
    optional: bool = False  # an app a commit may not rebuild: no image means it keeps what it runs
    tag_on_remote: bool = True  # the remote (origin) has the release tag, naming this commit
    tag_remote: str = ""  # what the remote check found (why not, when it does not)
    # Several target clusters: those that do not run ``target_digest``, and what the release tag names in each
    # cluster's own registry (registry -> digest or None).
    behind: tuple[str, ...] = ()
    regional_tags: tuple[tuple[str, str | None], ...] = ()
    # The source judged live (``app.steps.source_health``): None when not judged (no cluster, no digest); whether
    # it still runs the digest, why it is not healthy now, and what runs instead where it does not.
    live_runs: bool | None = None
    live_problems: tuple[str, ...] = ()
    live_elsewhere: tuple[str, ...] = ()
    target_healthy: bool | None = None  # the target runs the digest, healthy, now (None: not judged)
    # The newest release promoted there, deployed or only moved (``--no-deploy``): what its values file and release
    # tag say. ``deploy``: this promotion deploys (else it is done once the image is moved and recorded).
    recorded_version: Version | None = None
    recorded_digest: str | None = None
    deploy: bool = True
    # The source's ledger: entries deleted, rewritten or unreadable (by key: its evidence cannot be trusted), and
    # this digest's healthy entries not counted (their writer's clock was off S3's)
    source_ledger: tuple[str, ...] = ()
    not_counted: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        return self.optional and self.source_digest is None

    @property
    def done(self) -> bool:
        """Nothing to do: the target runs the digest, healthy, under the release tag in every registry; without
        ``deploy``, the image is moved there and recorded already."""
        digest = self.source_digest
        regional = all(d == digest for _, d in self.regional_tags)
        moved = digest is not None and self.target_tag_digest == digest and regional
        if not self.deploy:
            return moved and digest in (self.recorded_digest, self.target_digest)
        return moved and self.target_digest == digest and not self.behind and self.target_healthy is not False


@dataclass(frozen=True)
class Gate:
    name: str
    ok: bool
    message: str
    override: str | None = None  # the flag that overrides it (None: cannot be overridden)
    overridden: bool = False
    app: str = ""
    fix: str = ""  # what to do instead, for a gate no flag overrides (the refusal's hint)

    @property
    def refused(self) -> bool:
        return not self.ok and not self.overridden

    def data(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "name": self.name,
            "ok": self.ok,
            "overridden": self.overridden,
            "override": self.override,
            "message": self.message,
        }
