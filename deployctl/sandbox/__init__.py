"""The lab: real local stand-ins (moto, OCI registries, a Kubernetes control plane with kwok nodes).

Used by the lab tests (``tests/lab``) and by ``deployctl sandbox up|down|status|env``.
"""
