"""Kubernetes backend (pulumi-kubernetes): one StatefulSet per cluster and the objects around it.

Per cluster, in ``kube-namespace``: a Secret (credentials), an auto-named my.cnf
ConfigMap (a changed my.cnf gets a new name, so the pods roll), the StatefulSet
(claim template sized from the plan, resources from the plan, one pod per host),
a headless Service for stable pod names, ``-primary``/``-replicas`` Services that
select pods by the role label the watcher flips, a PodDisruptionBudget, the
watcher Deployment with its ServiceAccount and least RBAC, and a bootstrap Job.

Growing storage patches each PVC (``PersistentVolumeClaimPatch``); the claim
template is immutable and its changes are ignored.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.backends.base import Backend, ClusterSecrets, NodeResources
from components.backends.docker import watcher_image_of
from repman.backends import container as image, kube_spec as ks
from repman.password_hash import native_password_hash
from repman.routing import kube as rk
from repman.spec import ClusterSpec, NodeSpec
from repman.watcher_yaml import dump, env_name, env_ref, render_watcher_config

meta = k8s.meta.v1
core = k8s.core.v1
apps = k8s.apps.v1


class KubeBackend(Backend):
    name = "kube"
    bootstraps_from_deployer = False   # pod addresses are only reachable inside the cluster

    def __init__(self, spec: ClusterSpec) -> None:
        super().__init__(spec)
        self.names = rk.KubeNames(spec.name, spec.kube_namespace)
        self.labels = rk.selector_labels(spec.name)

    # -- per node: only addresses (the StatefulSet owns the pods) ------------------------
    def create_node(
        self, node: NodeSpec, secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> NodeResources:
        ordinal = node.index - 1
        return NodeResources(
            host=self.names.pod_host(ordinal), port=image.DB_PORT,
            instance=f"{self.names.namespace}/{self.names.pod(ordinal)}",
            outputs={"pod": self.names.pod(ordinal), "pvc": self.names.pvc(ordinal)},
        )

    def _meta(self, name: str | None = None, **labels: str) -> meta.ObjectMetaArgs:
        return meta.ObjectMetaArgs(name=name, namespace=self.names.namespace,
                                   labels={**self.labels, **labels})

    # -- cluster-wide objects -------------------------------------------------------------
    def create_cluster_resources(
        self, nodes: Sequence[NodeResources], secrets: ClusterSecrets, parent: pulumi.ComponentResource,
    ) -> list[pulumi.Resource]:
        spec, names = self.spec, self.names
        cname = spec.name
        opts = pulumi.ResourceOptions(parent=parent)
        secret = self._secret(cname, secrets, opts)
        tls = self._tls_secret(cname, opts)
        mycnf = core.ConfigMap(
            f"{cname}-mycnf",  # no metadata.name: auto-named, so a new my.cnf rolls the pods
            metadata=self._meta(),
            data={"repman.cnf": image.container_mycnf(spec.db_tags, spec.plan, spec.db_settings())},
            opts=opts,
        )
        initdb = core.ConfigMap(
            f"{cname}-initdb", metadata=self._meta(), data={"10-repman-admin.sh": image.admin_init_script()},
            opts=opts,
        )
        headless = core.Service(
            f"{cname}-headless",
            metadata=self._meta(names.headless),
            spec=core.ServiceSpecArgs(
                cluster_ip="None", publish_not_ready_addresses=True, selector=self.labels,
                ports=[core.ServicePortArgs(name="mysql", port=image.DB_PORT, target_port="mysql")],
            ),
            opts=opts,
        )
        routed = [
            core.Service(
                f"{cname}-{role}-service",
                metadata=self._meta(service, **{rk.ROLE_LABEL: role}),
                spec=core.ServiceSpecArgs(
                    type=spec.values["kube-service-type"], selector=rk.role_selector(cname, role),
                    ports=[core.ServicePortArgs(name="mysql", port=image.DB_PORT, target_port="mysql")],
                ),
                opts=opts,
            )
            for role, service in ((rk.PRIMARY, names.primary_service), (rk.REPLICA, names.replicas_service))
        ]
        sts = self._statefulset(secret, tls, mycnf, initdb, headless, opts)
        pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{cname}-pdb", metadata=self._meta(f"{names.statefulset}-pdb"),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=self.labels)),
            opts=opts,
        )
        volumes = self._volume_sizes(sts, opts)
        watcher = self._watcher(nodes, secret, sts, opts)
        made = [secret, mycnf, initdb, headless, *routed, sts, pdb, *volumes, *watcher]
        return made + ([tls] if tls is not None else [])

    def _secret(self, cname: str, secrets: ClusterSecrets, opts: pulumi.ResourceOptions) -> core.Secret:
        data: dict[str, Any] = {
            "admin-user": secrets.admin_user,
            "admin-password": secrets.admin_password,
            "admin-password-hash": pulumi.Output.from_input(secrets.admin_password).apply(native_password_hash),
            "db-servers-credential": pulumi.Output.concat(secrets.admin_user, ":", secrets.admin_password),
            "replication-credential": pulumi.Output.concat(
                secrets.replication_user, ":", secrets.replication_password),
        }
        return core.Secret(
            f"{cname}-credentials", metadata=self._meta(f"{cname}-credentials"), type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in data.items()}, opts=opts,
        )

    def _tls_secret(self, cname: str, opts: pulumi.ResourceOptions) -> core.Secret | None:
        """Certificates for the ``ssl`` tag, made once and kept under prov-state-dir."""
        if "ssl" not in self.spec.db_tags:
            return None
        from repman.tls import ensure_server_certificates

        directory = self.spec.state_dir / cname / "kube-tls"
        hosts = [self.names.pod_host(i) for i in range(self.spec.node_count)]
        hosts += [self.names.service_host(s) for s in (self.names.primary_service, self.names.replicas_service)]
        ensure_server_certificates(directory, hosts=hosts)
        files = {n: (directory / n).read_text() for n in ("ca.pem", "server-cert.pem", "server-key.pem")}
        return core.Secret(
            f"{cname}-tls", metadata=self._meta(f"{cname}-tls"), type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in files.items()}, opts=opts,
        )

    def _statefulset(self, secret: core.Secret, tls: core.Secret | None, mycnf: core.ConfigMap,
                     initdb: core.ConfigMap, headless: core.Service, opts: pulumi.ResourceOptions,
                     ) -> apps.StatefulSet:
        spec, names, plan = self.spec, self.names, self.spec.plan

        def from_secret(key: str) -> core.EnvVarSourceArgs:
            return core.EnvVarSourceArgs(secret_key_ref=core.SecretKeySelectorArgs(
                name=secret.metadata.name, key=key))

        resources = core.ResourceRequirementsArgs(
            requests={"cpu": ks.cpu_quantity(plan), "memory": ks.memory_quantity(plan)},
            limits={"memory": ks.memory_quantity(plan)},
        )
        mounts = [
            core.VolumeMountArgs(name=rk.DATA_VOLUME, mount_path=image.DATA_DIR),
            core.VolumeMountArgs(name="mycnf", mount_path=image.CONF_DIR, read_only=True),
            core.VolumeMountArgs(name="initdb", mount_path=image.INITDB_DIR, read_only=True),
            core.VolumeMountArgs(name="run", mount_path=image.RUN_DIR),
            core.VolumeMountArgs(name="tmp", mount_path="/tmp"),
        ]
        volumes = [
            core.VolumeArgs(name="mycnf", config_map=core.ConfigMapVolumeSourceArgs(name=mycnf.metadata.name)),
            core.VolumeArgs(name="initdb", config_map=core.ConfigMapVolumeSourceArgs(name=initdb.metadata.name)),
            core.VolumeArgs(name="run", empty_dir=core.EmptyDirVolumeSourceArgs()),
            # repman's prov-db-disk-temp-size (MB); in memory when prov-db-docker-tmpfs-size is set
            core.VolumeArgs(name="tmp", empty_dir=core.EmptyDirVolumeSourceArgs(**ks.temp_volume(spec.values))),
        ]
        if tls is not None:
            mounts.append(core.VolumeMountArgs(name="tls", mount_path=image.SSL_DIR, read_only=True))
            volumes.append(core.VolumeArgs(name="tls", secret=core.SecretVolumeSourceArgs(
                secret_name=tls.metadata.name, default_mode=0o440)))
        probe = core.ProbeArgs(exec_=core.ExecActionArgs(command=image.readiness_command()),
                               period_seconds=5, timeout_seconds=5, failure_threshold=3)
        liveness = core.ProbeArgs(exec_=core.ExecActionArgs(command=["healthcheck.sh", "--connect"]),
                                  initial_delay_seconds=30, period_seconds=10, timeout_seconds=5,
                                  failure_threshold=6)
        container = core.ContainerArgs(
            name="mariadb", image=spec.db_image, command=ks.start_command(names),
            ports=[core.ContainerPortArgs(name="mysql", container_port=image.DB_PORT)],
            env=[
                core.EnvVarArgs(name="MARIADB_RANDOM_ROOT_PASSWORD", value="yes"),
                core.EnvVarArgs(name="REPMAN_ADMIN_USER", value_from=from_secret("admin-user")),
                # the hash only: the clear admin password stays out of the pod's environment
                core.EnvVarArgs(name="REPMAN_ADMIN_PASSWORD_HASH", value_from=from_secret("admin-password-hash")),
            ],
            resources=resources, volume_mounts=mounts, readiness_probe=probe, liveness_probe=liveness,
        )
        claim = core.PersistentVolumeClaimArgs(
            metadata=meta.ObjectMetaArgs(name=rk.DATA_VOLUME, labels=self.labels),
            spec=core.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=spec.values["kube-storage-class"] or None,
                resources=core.VolumeResourceRequirementsArgs(requests={"storage": ks.storage_quantity(plan)}),
            ),
        )
        anti_affinity = core.AffinityArgs(pod_anti_affinity=core.PodAntiAffinityArgs(
            required_during_scheduling_ignored_during_execution=[core.PodAffinityTermArgs(
                label_selector=meta.LabelSelectorArgs(match_labels=self.labels),
                topology_key="kubernetes.io/hostname",
            )],
        ))
        return apps.StatefulSet(
            f"{spec.name}-statefulset",
            metadata=self._meta(names.statefulset),
            spec=apps.StatefulSetSpecArgs(
                replicas=spec.node_count, service_name=headless.metadata.name,
                pod_management_policy="Parallel",
                selector=meta.LabelSelectorArgs(match_labels=self.labels),
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=self.labels),
                    spec=core.PodSpecArgs(
                        containers=[container], volumes=volumes, affinity=anti_affinity,
                        termination_grace_period_seconds=120,
                        security_context=core.PodSecurityContextArgs(fs_group=999),
                    ),
                ),
                volume_claim_templates=[claim],
                persistent_volume_claim_retention_policy=apps.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
                    when_deleted="Retain" if spec.keep_data_on_delete else "Delete", when_scaled="Retain"),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                ignore_changes=["spec.volumeClaimTemplates"],   # immutable: resize goes through PVC patches
                protect=bool(spec.values.get("prov-protect", True)),
            )),
        )

    def _volume_sizes(self, sts: apps.StatefulSet, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """Each pod's claim sized from the plan (server-side apply of spec.resources only)."""
        size = ks.storage_quantity(self.spec.plan)
        return [
            core.PersistentVolumeClaimPatch(
                f"{self.spec.name}-db{i + 1}-volume-size",
                metadata=meta.ObjectMetaPatchArgs(
                    name=self.names.pvc(i), namespace=self.names.namespace,
                    annotations={"pulumi.com/patchForce": "true"},
                ),
                spec=core.PersistentVolumeClaimSpecPatchArgs(
                    resources=core.VolumeResourceRequirementsPatchArgs(requests={"storage": size}),
                ),
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[sts])),
            )
            for i in range(self.spec.node_count)
        ]

    def _watcher(self, nodes: Sequence[NodeResources], secret: core.Secret, sts: apps.StatefulSet,
                 opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        spec, names = self.spec, self.names
        cname = spec.name
        servers = [f"{self.names.pod_host(i)}:{image.DB_PORT}" for i in range(spec.node_count)]
        doc = render_watcher_config(spec, servers, env_ref, state_dir="/var/lib/repman",
                                    routing={"kube-role-labels": True, "failover-fence-kube-pods": True})
        text = dump(doc)
        config = core.ConfigMap(f"{cname}-watcher-config", metadata=self._meta(component="watcher"),
                                data={"repman.yaml": text}, opts=opts)
        account = core.ServiceAccount(f"{cname}-watcher-account", metadata=self._meta(names.watcher),
                                      automount_service_account_token=True, opts=opts)
        role = k8s.rbac.v1.Role(
            f"{cname}-watcher-role", metadata=self._meta(names.watcher),
            rules=[k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["pods"],
                                              verbs=["get", "list", "watch", "patch", "delete"])],
            opts=opts,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{cname}-watcher-binding", metadata=self._meta(names.watcher),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role",
                                             name=role.metadata.name),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account.metadata.name,
                                              namespace=names.namespace)],
            opts=opts,
        )
        env = [
            core.EnvVarArgs(name=env_name(key), value_from=core.EnvVarSourceArgs(
                secret_key_ref=core.SecretKeySelectorArgs(name=secret.metadata.name, key=key)))
            for key in ("db-servers-credential", "replication-credential")
        ]
        env += [core.EnvVarArgs(name="REPMAN_CONFIG", value=f"{ks.WATCHER_CONFIG_DIR}/repman.yaml"),
                core.EnvVarArgs(name="REPMAN_CLUSTER", value=cname)]
        mounts = [core.VolumeMountArgs(name="config", mount_path=ks.WATCHER_CONFIG_DIR, read_only=True),
                  core.VolumeMountArgs(name="state", mount_path="/var/lib/repman")]
        volumes = [core.VolumeArgs(name="config", config_map=core.ConfigMapVolumeSourceArgs(
                       name=config.metadata.name)),
                   core.VolumeArgs(name="state", empty_dir=core.EmptyDirVolumeSourceArgs())]
        pod_security = core.PodSecurityContextArgs(run_as_non_root=True, run_as_user=10001)
        container_security = core.SecurityContextArgs(allow_privilege_escalation=False,
                                                      read_only_root_filesystem=True)
        labels = {**self.labels, "app.kubernetes.io/component": "watcher"}
        deployment = apps.Deployment(
            f"{cname}-watcher",
            metadata=meta.ObjectMetaArgs(name=names.watcher, namespace=names.namespace, labels=labels),
            spec=apps.DeploymentSpecArgs(
                replicas=1, strategy=apps.DeploymentStrategyArgs(type="Recreate"),  # one watcher at a time
                selector=meta.LabelSelectorArgs(match_labels=labels),
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels, annotations={
                        "repman.io/config-sha": hashlib.sha256(text.encode()).hexdigest()[:16]}),
                    spec=core.PodSpecArgs(
                        service_account_name=account.metadata.name, security_context=pod_security,
                        containers=[core.ContainerArgs(
                            name="watcher", image=watcher_image_of(spec),
                            command=["repman", "--config", f"{ks.WATCHER_CONFIG_DIR}/repman.yaml", "watch"],
                            env=env, volume_mounts=mounts, security_context=container_security,
                            resources=core.ResourceRequirementsArgs(
                                requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "256Mi"}),
                        )],
                        volumes=volumes,
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[binding])),
        )
        job = k8s.batch.v1.Job(
            f"{cname}-bootstrap",   # auto-named: a new topology (servers) replaces the job and reruns it
            metadata=meta.ObjectMetaArgs(namespace=names.namespace,
                                         labels={**labels, "app.kubernetes.io/component": "bootstrap"}),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=6, ttl_seconds_after_finished=3600,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels={**labels, "app.kubernetes.io/component": "bootstrap"},
                                                 annotations={"repman.io/servers": ",".join(servers)}),
                    spec=core.PodSpecArgs(
                        restart_policy="OnFailure", service_account_name=account.metadata.name,
                        security_context=pod_security,
                        containers=[core.ContainerArgs(
                            name="bootstrap", image=watcher_image_of(spec),
                            command=["python", "-m", "repman.backends.container_bootstrap",
                                     f"{ks.WATCHER_CONFIG_DIR}/repman.yaml"],
                            env=env, volume_mounts=mounts[:1], security_context=container_security,
                        )],
                        volumes=volumes[:1],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[sts, binding])),
        )
        return [config, account, role, binding, deployment, job]

    def describe(self) -> dict[str, Any]:
        n = self.names
        return {
            "orchestrator": self.name, "namespace": n.namespace, "statefulset": n.statefulset,
            "write_endpoint": f"{n.service_host(n.primary_service)}:{image.DB_PORT}",
            "read_endpoint": f"{n.service_host(n.replicas_service)}:{image.DB_PORT}",
        }


def create_backend(spec: ClusterSpec) -> KubeBackend:
    return KubeBackend(spec)

