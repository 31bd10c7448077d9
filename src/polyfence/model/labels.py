"""Reserved label keys the IR uses for facts every format can select on but no object carries.

Selectors over endpoints may test these like ordinary labels; the engine supplies them and each
translator maps its own spelling (Calico ``projectcalico.org/namespace``, Cilium
``k8s:io.kubernetes.pod.namespace`` …) to and from them.
"""

from __future__ import annotations

NAMESPACE_KEY = "polyfence.dev/namespace"  # the endpoint's namespace (pods, namespaced sets)
SERVICE_ACCOUNT_KEY = "polyfence.dev/service-account"  # the pod's service account name
KIND_KEY = "polyfence.dev/kind"  # pod | network-set | host
NAME_KEY = "polyfence.dev/name"  # on service accounts: their name

KIND_POD = "pod"
KIND_NETWORK_SET = "network-set"
KIND_HOST = "host"

# Labels the aws format puts on the policies it reads (compliance's AWS checks read them).
SECURITY_GROUP_LABEL = (
    "polyfence.dev/security-group"  # the group a policy came from (id, else name)
)
GROUP_NAME_LABEL = "polyfence.dev/group-name"  # that group's GroupName (else its id)

PSEUDO_KEYS = frozenset({NAMESPACE_KEY, SERVICE_ACCOUNT_KEY, KIND_KEY})
