"""Rollout verdicts per workload kind, pure: Deployment, StatefulSet, DaemonSet, Job and a bare Pod.

Each takes the workload's state (from its API object), the pods of its new revision (see ``tracking``)
and a ``verdicts.Context``, and says progressing, complete or failed. A failure signal of a new pod
(``verdicts``) or of the controller wins over the counts; complete is what ``kubectl rollout status``
waits for, with kstatus' and kubedog's rules for StatefulSet partitions and OnDelete.
"""
