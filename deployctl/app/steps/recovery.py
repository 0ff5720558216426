"""Before a rollout (lock held): a release left pending by an interrupted run is recovered, the ledger's open
intents closed."""

from __future__ import annotations

from deployctl.adapters.helm import Release
from deployctl.app.context import EnvContext
from deployctl.core.errors import OperationError
from deployctl.ledger import labels
from deployctl.ledger.entry import Entry, open_intents
from deployctl.rollout.cluster import ClusterClient


def reconcile(
    ctx: EnvContext, cluster: ClusterClient, app_name: str, release: str, where: str | None = None
) -> tuple[str, ...]:
    """Complete the intents an interrupted run left open (lock held: no other run is mid-rollout), from helm's
    history: a revision whose description names the intent reached the cluster, but its rollout was never
    judged (``unknown``); no such revision means nothing did (``interrupted``). Never missing from the ledger."""
    found = ctx.read_ledger(question=labels.open_intents(app_name))  # only the open ones are fetched
    pending = open_intents(found.entries, app_name, where)  # ``where``: this cluster's intents only
    if not pending:
        return ()
    revisions = cluster.history(release)
    settled = []
    for intent in pending:
        revision = next((r for r in revisions if f"(intent {intent.id})" in r.description), None)
        if intent.action == "verify":  # ``deployctl verify`` changes nothing in the cluster: never judged, never passed
            outcome, message = "unknown", "the verification stopped before its checks were judged"
        elif revision is None:
            outcome, message = "interrupted", "the run stopped before helm changed anything"
        else:
            outcome = "unknown"
            message = f"helm revision {revision.revision} ({revision.status}) was made; its rollout was never judged"
        ctx.reporter.warn(f"an earlier {intent.action} of {intent.digest} ({intent.time}) did not finish: {message}")
        ctx.record(
            intent.written_now(
                outcome=outcome,
                intent=intent.id,
                release=intent.release or (f"{release}@{revision.revision}" if revision else None),
                message=f"settled by a later run: {message}",
            )
        )
        settled.append(f"{intent.action} {intent.id}: {outcome}")
    return tuple(settled)


def recover_pending(
    ctx: EnvContext, cluster: ClusterClient, app_name: str, current: Release | None, where: str | None = None
) -> tuple[str, ...]:
    """Make ``current`` (helm's lookup under the lock) deployable again when a killed run left it pending.

    Called only while holding the environment lock, which proves no other deployctl run is
    mid-operation. The pending revision's storage secret (``sh.helm.release.v1.<release>.v<N>``,
    labels owner=helm,status=pending-*) is deleted: helm then sees the last finished revision
    as current and the next upgrade proceeds. Nothing in the cluster is deleted or rolled back:
    the objects of the interrupted revision keep serving until the upgrade replaces them
    (helm adopts objects that carry its release annotations). ``helm rollback`` is not an option
    (policy: roll forward), and ``helm uninstall --keep-history`` for a pending install would
    delete the serving objects.
    """
    if current is None or not current.pending:
        return ()
    release = current.name
    records = cluster.pending_records(release)
    if not records:
        raise OperationError(
            f"release {release} is {current.status} at revision {current.revision}, but no pending release "
            f"secret was found in {cluster.namespace}",
            "helm may use a non-default storage driver (HELM_DRIVER); recover it by hand",
        )
    done = []
    for record in records:
        ctx.fence()  # a run that lost the lock must not remove the pending record of the run that took it
        cluster.delete_record(record)
        message = (
            f"release {release} revision {record.revision} was left {record.status} by an interrupted run; "
            f"removed its pending record {record.secret} (cluster objects untouched)"
        )
        ctx.reporter.warn(message)
        ctx.record(
            Entry(
                env=ctx.name,
                app=app_name,
                action="recover",
                outcome="succeeded",
                release=f"{release}@{record.revision}",
                message=message,
                cluster=where,
            )
        )
        done.append(f"{record.status} revision {record.revision}")
    return tuple(done)
