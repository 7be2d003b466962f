"""Docker backend (pulumi-docker): a workstation cluster of MariaDB containers.

Per cluster: a bridge network and the image (``prov-db-image``); per node: a data
volume and a container (my.cnf and the admin init script uploaded, the plan's memory
and cores, port 3306 published on ``docker-publish-host:<node port>``). Nodes reach
each other by container name on the network, which the deployer cannot resolve, so a
one-shot bootstrap container on the network wires replication, and the watcher runs
as a container there too.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Sequence

import pulumi
import pulumi_docker as docker

from components.backends.base import Backend, ClusterSecrets, NodeResources
from repman.backends.container import admin_init_script, container_mycnf
from repman.db import ServerAddress
from repman.routing.haproxy_config import HAProxyConfig, render_haproxy_config
from repman.spec import PROVISIONING_KEYS, ClusterSpec, NodeSpec
from repman.watcher_yaml import dump, file_ref, preferred_master, render_watcher_config, secret_values

DB_PORT = 3306
CONFIG_PATH = "/etc/repman/repman.yaml"
SECRETS_DIR = "/run/repman-secrets"   # one file per secret key, uploaded into watcher and bootstrap
WATCHER_API_PORT = 10005   # docker/watcher/Dockerfile: REPMAN_API_PORT, its HEALTHCHECK
PROXY_CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"   # the official haproxy image's
PROXY_ADMIN_PORT = 9999    # HAProxy runtime API on the cluster network only (never published)


class DockerBackend(Backend):
    name = "docker"
    bootstraps_from_deployer = False   # container names resolve on the Docker network only

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.network_name = spec.values["docker-network"] or f"{spec.name}-net"
        self.publish_host = spec.values["docker-publish-host"]
        self._network: tuple[pulumi.Output, Any] | None = None
        self._image: tuple[pulumi.Output, Any] | None = None

    def _deferred(self) -> tuple[pulumi.Output, pulumi.Output]:
        """Network and image are cluster resources made after the nodes: nodes get them deferred."""
        if self._network is None or self._image is None:
            self._network = pulumi.deferred_output()
            self._image = pulumi.deferred_output()
        return self._network[0], self._image[0]

    def _labels(self, **extra: str) -> list[docker.ContainerLabelArgs]:
        labels = {"repman.cluster": self.spec.name, "repman.managed-by": "repman", **extra}
        return [docker.ContainerLabelArgs(label=k, value=v) for k, v in labels.items()]

    def create_node(
        self, node: NodeSpec, secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> NodeResources:
        spec, plan = self.spec, self.spec.plan
        network, image = self._deferred()
        opts = pulumi.ResourceOptions(parent=parent)
        volume = docker.Volume(
            f"{node.name}-data", name=f"{node.name}-data",
            labels=[docker.VolumeLabelArgs(label="repman.cluster", value=spec.name)],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                retain_on_delete=spec.keep_data_on_delete, protect=bool(spec.values.get("prov-protect", True)))),
        )
        container = docker.Container(
            f"{node.name}-container",
            name=node.name, hostname=node.name, image=image,
            command=["mariadbd", f"--server-id={node.server_id}", f"--report-host={node.name}"],
            envs=[
                "MARIADB_RANDOM_ROOT_PASSWORD=yes",
                pulumi.Output.concat("REPMAN_ADMIN_USER=", secrets.admin_user),
                f"REPMAN_ADMIN_PASSWORD_FILE={SECRETS_DIR}/admin-password",   # read by the init script
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network, aliases=[node.name])],
            ports=[docker.ContainerPortArgs(internal=DB_PORT, external=node.port, ip=self.publish_host)],
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/var/lib/mysql")],
            uploads=[
                docker.ContainerUploadArgs(file="/etc/mysql/conf.d/repman.cnf",
                                           content=container_mycnf(spec.db_tags, plan, spec.db_settings())),
                docker.ContainerUploadArgs(file="/docker-entrypoint-initdb.d/10-repman-admin.sh",
                                           content=admin_init_script()),
                docker.ContainerUploadArgs(file=f"{SECRETS_DIR}/admin-password", permissions="0444",
                                           content=pulumi.Output.secret(secrets.admin_password)),
            ],
            memory=plan.memory_mb, cpus=str(plan.cores), restart="unless-stopped",
            # repman's prov-db-docker-tmpfs-size: /tmp in memory (mariadbd's tmpdir)
            tmpfs={"/tmp": f"rw,size={spec.values['prov-db-docker-tmpfs-size']}"}
            if spec.values.get("prov-db-docker-tmpfs-size") else None,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"],
                interval="5s", timeout="5s", retries=20, start_period="10s"),
            wait=True, wait_timeout=300, destroy_grace_seconds=60,
            labels=self._labels(**{"repman.node": node.name, "repman.server-id": str(node.server_id)}),
            opts=opts,
        )
        return NodeResources(
            host=node.name, port=DB_PORT, instance=container.id, resources=[volume, container],
            outputs={"published": f"{self.publish_host}:{node.port}", "volume": volume.name},
        )

    def create_cluster_resources(
        self, nodes: Sequence[NodeResources], secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> list[pulumi.Resource]:
        spec = self.spec
        opts = pulumi.ResourceOptions(parent=parent)
        self._deferred()
        network = docker.Network(
            f"{spec.name}-network", name=self.network_name, driver="bridge",
            labels=[docker.NetworkLabelArgs(label="repman.cluster", value=spec.name)], opts=opts,
        )
        image = docker.RemoteImage(f"{spec.name}-image", name=spec.db_image, keep_locally=True, opts=opts)
        assert self._network is not None and self._image is not None
        self._network[1](network.name)
        self._image[1](image.image_id)

        servers = [f"{n.name}:{DB_PORT}" for n in spec.nodes]
        # Credentials reach the watcher and bootstrap as files ({file: ...} references), never as
        # environment variables (docker inspect, /proc/*/environ).
        doc = render_watcher_config(spec, servers, file_ref(PurePosixPath(SECRETS_DIR)), state_dir="/var/lib/repman",
                                    routing=self.routing_keys())
        # The image's HEALTHCHECK asks the API's /health: on unless the stack configures it.
        doc.setdefault("api", {"api-bind": "127.0.0.1", "api-port": WATCHER_API_PORT})
        config_text = dump(doc)
        envs = [f"REPMAN_CLUSTER={spec.name}", f"REPMAN_CONFIG={CONFIG_PATH}"]
        secret_files = [docker.ContainerUploadArgs(file=f"{SECRETS_DIR}/{key}", content=pulumi.Output.secret(value),
                                                   permissions="0444")   # the image's user repman reads them
                        for key, value in sorted(secret_values(spec).items())]
        watcher_image = watcher_image_of(spec)
        common: dict[str, Any] = dict(
            image=watcher_image, envs=envs,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
            uploads=[docker.ContainerUploadArgs(file=CONFIG_PATH, content=config_text), *secret_files],
        )
        node_containers = [r for n in nodes for r in n.resources if isinstance(r, docker.Container)]
        bootstrap = docker.Container(
            f"{spec.name}-bootstrap", name=f"{spec.name}-bootstrap",
            command=["python", "-m", "repman.backends.container_bootstrap", CONFIG_PATH],
            must_run=False, attach=True, logs=True, labels=self._labels(**{"repman.role": "bootstrap"}),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=node_containers)),
            **common,
        )
        made: list[pulumi.Resource] = [network, image, bootstrap]
        if spec.watcher:
            made.append(docker.Container(
                f"{spec.name}-watcher", name=f"{spec.name}-watcher",
                command=["repman", "--config", CONFIG_PATH, "watch"], restart="unless-stopped",
                labels=self._labels(**{"repman.role": "watcher"}),
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[bootstrap])),
                **common,
            ))
        return made

    @property
    def proxy_name(self) -> str:
        return f"{self.spec.name}-haproxy"

    def routing_keys(self) -> dict[str, Any]:
        """The watcher drives the HAProxy container's runtime API over the cluster network."""
        if not self.spec.setting("haproxy"):
            return {}
        return {"haproxy": True, "haproxy-runtime-api-servers": [f"{self.proxy_name}:{PROXY_ADMIN_PORT}"],
                "haproxy-write-port": self.spec.setting("haproxy-write-port"),
                "haproxy-read-port": self.spec.setting("haproxy-read-port")}

    def create_proxy(self, args: Any, parent: pulumi.ComponentResource) -> tuple[list[pulumi.Resource], dict]:
        """HAProxy in a container (``prov-proxy-image``) on the cluster network; ports published like the nodes'."""
        spec = self.spec
        network, _ = self._deferred()
        servers = [f"{n.name}:{DB_PORT}" for n in spec.nodes]
        primary = preferred_master(spec, servers) or servers[0]
        text = render_haproxy_config(HAProxyConfig(
            cluster=spec.name, servers=tuple(ServerAddress.parse(s) for s in servers),
            stats_socket="/var/lib/haproxy/admin.sock", state_file="/var/lib/haproxy/server-state",
            primary=ServerAddress.parse(primary), write_port=args.write_port, read_port=args.read_port,
            bind_address="0.0.0.0", tags=tuple(args.tags), stats_tcp=ServerAddress("0.0.0.0", PROXY_ADMIN_PORT),
            nbthread=args.plan.proxy_cores if args.plan else 0,
        ))
        ports = [docker.ContainerPortArgs(internal=args.write_port, external=args.write_port, ip=self.publish_host)]
        if args.read_split:
            ports.append(docker.ContainerPortArgs(internal=args.read_port, external=args.read_port,
                                                  ip=self.publish_host))
        container = docker.Container(
            self.proxy_name, name=self.proxy_name, hostname=self.proxy_name, image=spec.values["prov-proxy-image"],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network, aliases=[self.proxy_name])],
            ports=ports, uploads=[docker.ContainerUploadArgs(file=PROXY_CONFIG_PATH, content=text)],
            restart="unless-stopped", labels=self._labels(**{"repman.role": "proxy"}),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        outputs = {"write_address": f"{self.publish_host}:{args.write_port}",
                   "read_address": f"{self.publish_host}:{args.read_port}" if args.read_split else "",
                   "admin_socket": f"{self.proxy_name}:{PROXY_ADMIN_PORT}"}
        return [container], outputs

    def describe(self) -> dict[str, Any]:
        return {"orchestrator": self.name, "network": self.network_name,
                "published": [f"{self.publish_host}:{n.port}" for n in self.spec.nodes]}


def watcher_image_of(spec: ClusterSpec) -> str:
    """``prov-watcher-image``; the older ``kube-watcher-image`` only where it alone was set."""
    chosen = spec.values["prov-watcher-image"]
    legacy = spec.values.get("kube-watcher-image")
    if chosen == PROVISIONING_KEYS["prov-watcher-image"].default and legacy and \
            legacy != PROVISIONING_KEYS["kube-watcher-image"].default:
        return legacy
    return chosen


def create_backend(spec: ClusterSpec) -> DockerBackend:
    return DockerBackend(spec)
