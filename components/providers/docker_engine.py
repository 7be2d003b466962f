"""pulumi-docker resources applied on a real Docker engine through docker-py, for the embedded engine.

The embedded engine runs dynamic providers only; the Docker backend declares
``docker:index/*`` resources of pulumi-docker (a bridge of terraform-provider-docker).
This module gives those four types the dynamic provider interface (check, diff,
create, update, read, delete) and creates them as pulumi-docker would, from the
exact inputs the program registers. Known differences from pulumi-docker's own
translation (also in README, "Container backends"):

- the container is created attached to its first ``networks_advanced`` network (with
  its aliases) instead of created on ``bridge`` then moved; further networks are connected after;
- a changed input replaces the container, except ``restart``, ``memory``, ``memory_swap``,
  ``cpu_shares``, which are updated in place (as the provider does); ``labels`` replace too;
- secret ``envs``/``uploads`` are not in state (the engine never stores secret inputs): ``diff``
  compares them with the live container (``docker inspect``, ``get_archive``);
- ``RemoteImage`` never pulls: the image must exist locally (``scripts/build-images.sh``);
- a ``Volume`` is kept on delete when ``prov-keep-data-on-delete`` is true (the backend's
  ``retain_on_delete``, which the embedded engine does not carry to providers);
- an attached one-shot container (``attach``) that exits non-zero fails the run, even with
  ``must_run`` false (pulumi-docker records the exit code only);
- ``read`` (refresh) reports a container that is gone as gone; one that exists but is not
  running is kept (pulumi-docker drops a stopped ``must_run`` container from state).
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Any

from repman.errors import RepmanError

BLOB_PREFIX = "docker-py:"
TYPES = {
    "docker:index/network:Network": "network",
    "docker:index/volume:Volume": "volume",
    "docker:index/remoteImage:RemoteImage": "image",
    "docker:index/container:Container": "container",
}
IN_PLACE = {"restart", "memory", "memorySwap", "cpuShares"}
_DURATION_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                   "h": 3_600_000_000_000}


def blob(typ: str) -> str:
    """What the engine stores as this resource's provider: the marker of this module and the type."""
    return BLOB_PREFIX + typ


def provider_for(serialized: str) -> DockerPyProvider:
    return DockerPyProvider(serialized[len(BLOB_PREFIX):])


def _client() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=120)  # type: ignore[attr-defined]  # mypy resolves `docker` to the repo's docker/ folder, not the SDK
        client.ping()
        return client
    except Exception as exc:  # docker.errors.DockerException, connection refused...
        raise RepmanError(f"Docker engine unreachable ({type(exc).__name__}): start dockerd "
                          "(scripts/build-images.sh starts one) or set DOCKER_HOST") from None


def _ns(text: str | None) -> int:
    """'5s', '1m30s', '500ms' (Go durations, as pulumi-docker takes them) in nanoseconds."""
    if not text:
        return 0
    total, num = 0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = text[i:i + 2] if text[i:i + 2] in _DURATION_UNITS else c
        if unit not in _DURATION_UNITS or not num:
            raise RepmanError(f"healthcheck: duration {text!r} is not like 5s, 1m30s or 500ms")
        total += int(float(num) * _DURATION_UNITS[unit])
        num, i = "", i + len(unit)
    if num:
        raise RepmanError(f"healthcheck: duration {text!r} lacks a unit")
    return total


def _labels(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(i["label"]): str(i["value"]) for i in items or []}


def _upload_bytes(up: dict[str, Any]) -> bytes:
    if up.get("content") is None and up.get("contentBase64"):
        import base64

        return base64.b64decode(up["contentBase64"])
    return str(up.get("content") or "").encode()


def _upload_mode(up: dict[str, Any]) -> int:
    """``permissions`` (octal text) if given, else 0755 for ``executable``, 0644 otherwise."""
    if up.get("permissions"):
        return int(str(up["permissions"]), 8)
    return 0o755 if up.get("executable") else 0o644


def _tar(uploads: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for up in uploads:
            raw = _upload_bytes(up)
            info = tarfile.TarInfo(str(up["file"]).lstrip("/"))
            info.size, info.mtime, info.mode = len(raw), int(time.time()), _upload_mode(up)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def _int(value: Any, default: int = 0) -> int:
    return default if value is None else int(value)


class DockerPyProvider:
    """One pulumi-docker resource type, applied through docker-py."""

    def __init__(self, typ: str) -> None:
        if typ not in TYPES:
            raise RepmanError(f"resource type {typ} is not applied by the docker-py provider")
        self.typ, self.kind = typ, TYPES[typ]
        self.keep_volumes = False

    def configure(self, request: Any) -> None:
        """Reads ``prov-keep-data-on-delete`` (default true: volumes are kept)."""
        value = request.config.get("repman:prov-keep-data-on-delete")
        self.keep_volumes = value is None or str(value).lower() == "true"

    # -- planning
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        from pulumi.dynamic import CheckResult

        return CheckResult(dict(news), [])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        from pulumi.dynamic import DiffResult

        keys = sorted(k for k in set(olds) | set(news)
                      if not k.startswith("__") and k in news and olds.get(k) != news.get(k))
        for key in ("envs", "uploads"):
            # A secret input is not in state: compare it with the live container instead.
            if self.kind == "container" and key in keys and key not in olds:
                keys.remove(key)
                if not self._live_matches(id_, key, news.get(key) or []):
                    keys.append(key)
        replaces = [k for k in keys if not (self.kind == "container" and k in IN_PLACE)]
        return DiffResult(changes=bool(keys), replaces=replaces, delete_before_replace=True)

    def _live_matches(self, id_: str, key: str, wanted: list[Any]) -> bool:
        """``envs`` all set, or ``uploads`` all present with the same content and mode, in the container."""
        try:
            container = _client().containers.get(id_)
            if key == "envs":
                return set(wanted) <= set(container.attrs["Config"]["Env"] or [])
            for up in wanted:
                stream, _ = container.get_archive(up["file"])
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    member = tar.getmembers()[0]
                    extracted = tar.extractfile(member)
                    same_mode = member.mode & 0o7777 == _upload_mode(up)   # without the file-type bits
                    if extracted is None or extracted.read() != _upload_bytes(up) or not same_mode:
                        return False
            return True
        except Exception:  # noqa: BLE001  (gone, unreadable: recreate)
            return False

    # -- operations
    def create(self, props: dict[str, Any]) -> Any:
        from pulumi.dynamic import CreateResult

        client = _client()
        make = getattr(self, f"_create_{self.kind}")
        id_, computed = make(client, props)
        return CreateResult(id_, {**_public(props), **computed})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        from pulumi.dynamic import UpdateResult

        container = _client().containers.get(id_)
        restart = news.get("restart") or "no"
        container.update(
            restart_policy={"Name": restart, **({"MaximumRetryCount": _int(news.get("maxRetryCount"))}
                                                if restart == "on-failure" else {})},
            **({"mem_limit": f"{_int(news['memory'])}m"} if news.get("memory") else {}),
            **({"memswap_limit": f"{_int(news['memorySwap'])}m"} if news.get("memorySwap") else {}),
            **({"cpu_shares": _int(news["cpuShares"])} if news.get("cpuShares") else {}),
        )
        return UpdateResult({**_public(news), "id": id_})

    def read(self, id_: str, props: dict[str, Any]) -> Any:
        from pulumi.dynamic import ReadResult

        import docker

        client = _client()
        try:
            if self.kind == "network":
                client.networks.get(id_)
            elif self.kind == "volume":
                client.volumes.get(id_)
            elif self.kind == "image":
                client.images.get(props.get("imageId") or props.get("name"))
            else:
                client.containers.get(id_)
        except docker.errors.NotFound:  # type: ignore[attr-defined]  # mypy resolves `docker` to the repo's docker/ folder, not the SDK
            return ReadResult("", {})
        return ReadResult(id_, props)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        import docker

        client = _client()
        try:
            if self.kind == "container":
                c = client.containers.get(id_)
                if c.status == "running":
                    c.stop(timeout=_int(props.get("destroyGraceSeconds"), 0))
                c.remove(v=props.get("removeVolumes", True) is not False, force=True)
            elif self.kind == "network":
                client.networks.get(id_).remove()
            elif self.kind == "volume" and not self.keep_volumes:
                client.volumes.get(id_).remove(force=True)
            # RemoteImage: keep_locally (our images are built, never pulled): nothing to delete.
        except docker.errors.NotFound:  # type: ignore[attr-defined]  # mypy resolves `docker` to the repo's docker/ folder, not the SDK
            pass

    # -- one kind each
    def _create_network(self, client: Any, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        net = client.networks.create(p["name"], driver=p.get("driver") or "bridge", labels=_labels(p.get("labels")),
                                     internal=bool(p.get("internal")), attachable=bool(p.get("attachable")),
                                     check_duplicate=True)
        return net.id, {"id": net.id, "scope": "local"}

    def _create_volume(self, client: Any, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        vol = client.volumes.create(name=p["name"], driver=p.get("driver") or "local",
                                    labels=_labels(p.get("labels")))
        return vol.name, {"mountpoint": vol.attrs.get("Mountpoint", "")}

    def _create_image(self, client: Any, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        import docker

        try:
            image = client.images.get(p["name"])
        except docker.errors.ImageNotFound:  # type: ignore[attr-defined]  # mypy resolves `docker` to the repo's docker/ folder, not the SDK
            raise RepmanError(f"image {p['name']} not found locally (nothing is pulled here: build it with "
                              "scripts/build-images.sh or docker pull it, then set repman:prov-db-image)") from None
        digests = image.attrs.get("RepoDigests") or []
        return f"{image.id}{p['name']}", {"imageId": image.id, "repoDigest": digests[0] if digests else ""}

    def _create_container(self, client: Any, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from docker.types import Healthcheck, Mount

        import docker

        networks = p.get("networksAdvanced") or []
        first = networks[0] if networks else None
        hc = p.get("healthcheck")
        healthcheck = Healthcheck(
            test=hc["tests"], interval=_ns(hc.get("interval")), timeout=_ns(hc.get("timeout")),
            retries=_int(hc.get("retries")), start_period=_ns(hc.get("startPeriod")),
        ) if hc else None
        ports: dict[str, Any] = {}
        for port in p.get("ports") or []:
            key = f"{_int(port['internal'])}/{port.get('protocol') or 'tcp'}"
            ports[key] = (port.get("ip") or "0.0.0.0", _int(port.get("external")) or None)
        mounts = [Mount(target=v["containerPath"], source=v.get("volumeName") or v.get("hostPath"),
                        type="volume" if v.get("volumeName") else "bind", read_only=bool(v.get("readOnly")))
                  for v in p.get("volumes") or []]
        restart = p.get("restart") or "no"
        kwargs: dict[str, Any] = dict(
            image=p["image"], name=p["name"], hostname=p.get("hostname"), command=p.get("command"),
            entrypoint=p.get("entrypoints"), environment=p.get("envs") or [], labels=_labels(p.get("labels")),
            healthcheck=healthcheck, ports=ports or None, mounts=mounts or None, user=p.get("user"),
            working_dir=p.get("workingDir"),
            restart_policy={"Name": restart, **({"MaximumRetryCount": _int(p.get("maxRetryCount"))}
                                                if restart == "on-failure" else {})},
        )
        if p.get("memory"):
            kwargs["mem_limit"] = f"{_int(p['memory'])}m"
        if p.get("cpus"):
            kwargs["nano_cpus"] = int(float(p["cpus"]) * 1e9)
        if first:
            kwargs["network"] = first["name"]
            kwargs["networking_config"] = {first["name"]: client.api.create_endpoint_config(
                aliases=first.get("aliases") or None, ipv4_address=first.get("ipv4Address") or None)}
        try:
            container = client.containers.create(**{k: v for k, v in kwargs.items() if v is not None})
        except docker.errors.APIError as exc:  # type: ignore[attr-defined]  # mypy resolves `docker` to the repo's docker/ folder, not the SDK
            raise RepmanError(f"container {p['name']}: {exc.explanation or exc}") from None
        for extra in networks[1:]:
            client.networks.get(extra["name"]).connect(container, aliases=extra.get("aliases") or None)
        if p.get("uploads"):
            container.put_archive("/", _tar(p["uploads"]))
        computed: dict[str, Any] = {"id": container.id}
        if p.get("start", True) is not False:
            container.start()
            computed.update(self._after_start(container, p))
        return container.id, computed

    def _after_start(self, container: Any, p: dict[str, Any]) -> dict[str, Any]:
        """``attach`` waits for the exit (and keeps ``logs``); ``wait`` waits for healthy, as pulumi-docker."""
        out: dict[str, Any] = {}
        if p.get("attach"):
            result = container.wait(timeout=_int(p.get("waitTimeout"), 600))
            out["exitCode"] = result.get("StatusCode", -1)
            if p.get("logs"):
                out["containerLogs"] = container.logs().decode(errors="replace")
            if out["exitCode"] != 0:
                tail = container.logs(tail=5).decode(errors="replace").strip().splitlines()
                raise RepmanError(f"container {p['name']} exited with {out['exitCode']}: "
                                  f"{tail[-1] if tail else 'no output'}")
            return out
        if p.get("wait"):
            deadline = time.monotonic() + _int(p.get("waitTimeout"), 60)
            while True:
                container.reload()
                health = (container.attrs.get("State", {}).get("Health") or {}).get("Status")
                if health == "healthy":
                    break
                if container.status in ("exited", "dead"):
                    tail = container.logs(tail=5).decode(errors="replace").strip().splitlines()
                    raise RepmanError(f"container {p['name']} exited before healthy: "
                                      f"{tail[-1] if tail else 'no output'}")
                if time.monotonic() > deadline:
                    raise RepmanError(f"container {p['name']} not healthy after {p.get('waitTimeout')}s "
                                      f"(health {health})")
                time.sleep(0.5)
        elif p.get("mustRun", True) is not False:
            container.reload()
            if container.status != "running":
                raise RepmanError(f"container {p['name']} is {container.status}, not running")
        return out


def _public(props: dict[str, Any]) -> dict[str, Any]:
    """Inputs echoed as outputs (as the provider's state holds every attribute)."""
    return {k: v for k, v in props.items() if not k.startswith("__")}
