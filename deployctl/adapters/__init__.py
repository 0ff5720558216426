"""The outside world: AWS, EKS, git, docker, helm, GitHub, OCI registries (``registry``) and the Kubernetes API
(``kube``); no judging here.
"""
