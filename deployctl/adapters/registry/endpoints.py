"""A repository in a registry and the means to reach it: what promote, deploy and build talk to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployctl.adapters.registry.ecr import Ecr, ecr_account, is_ecr_host
from deployctl.adapters.registry.errors import RegistryError
from deployctl.adapters.registry.oci import OciRegistry
from deployctl.adapters.registry.retry import RetryPolicy

if TYPE_CHECKING:
    from deployctl.config import Environment
    from deployctl.core.refs import ImageRef
    from deployctl.redact import Redactor


@dataclass
class Endpoint:
    """A repository in a registry and the means to reach it (ECR API and/or OCI API)."""

    host: str
    repository: str
    ecr: Ecr | None = None
    oci: OciRegistry | None = None
    _oci_factory: Callable[[], OciRegistry] | None = None

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    def registry_api(self) -> OciRegistry:
        if self.oci is None:
            if self._oci_factory is None:
                raise RegistryError(f"no registry API access configured for {self.host}")
            self.oci = self._oci_factory()
        return self.oci

    def resolve(self, tag: str) -> str | None:
        if self.ecr is not None:
            return self.ecr.describe(self.repository, tag)
        return self.registry_api().resolve(self.repository, tag)


def endpoint(
    env: Environment,
    image: ImageRef,
    *,
    redactor: Redactor | None = None,
    policy: RetryPolicy | None = None,
    ecr_client: Any | None = None,
) -> Endpoint:
    """The endpoint for ``image`` as seen from ``env`` (its AWS credentials for ECR hosts)."""
    policy = policy or RetryPolicy()
    if not is_ecr_host(image.registry):
        return Endpoint(image.registry, image.repository, oci=OciRegistry(image.registry, policy=policy))
    if ecr_client is None:
        from deployctl.adapters.aws import AwsSession

        ecr_client = AwsSession(f"the registry {image.registry}", env).client("ecr")
    ecr = Ecr(ecr_client, ecr_account(image.registry))

    def oci() -> OciRegistry:
        user, password = ecr.credentials(redactor)
        return OciRegistry(image.registry, username=user, password=password, policy=policy)

    return Endpoint(image.registry, image.repository, ecr=ecr, _oci_factory=oci)


def resolve(env: Environment, image: ImageRef, *, redactor: Redactor | None = None) -> str | None:
    """The digest ``image.tag`` names in its registry, or None when there is no such tag."""
    if image.tag is None:
        raise ValueError("resolve needs an image tag")
    return endpoint(env, image, redactor=redactor).resolve(image.tag)
