"""The NixOS module (evaluated with the self-contained lib and stub pkgs, since nixpkgs
cannot be fetched here): a hardened systemd unit running `repman watch`, and a generated
watcher config that holds references to secrets only and that the real parser accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from repman.api.config import api_config
from repman.watcher.config import parse_config
from testkit.nix import EXAMPLES, NIX_DIR, needs_nix, nix_error, nix_json, nix_string

pytestmark = needs_nix

HARNESS = NIX_DIR / "tests" / "eval-nixos.nix"
CREDS = "/run/credentials/repman.service"
HARDENING = {
    "DynamicUser": True, "NoNewPrivileges": True, "ProtectSystem": "strict", "ProtectHome": True,
    "PrivateTmp": True, "PrivateDevices": True, "StateDirectory": "repman", "UMask": "0077",
    "ProtectKernelTunables": True, "ProtectKernelModules": True, "ProtectControlGroups": True,
    "RestrictSUIDSGID": True, "RestrictNamespaces": True, "LockPersonality": True,
    "MemoryDenyWriteExecute": True, "SystemCallArchitectures": "native", "CapabilityBoundingSet": "",
}


def eval_nixos(configuration: str | Path) -> dict[str, Any]:
    arg = ["--argstr", "configuration", str(configuration)] if isinstance(configuration, Path) \
        else ["--arg", "configuration", configuration]
    return nix_json([str(HARNESS), *arg])


def cluster(extra: str = "") -> str:
    return f"""{{ services.repman = {{ enable = true; clusters.c1 = {{
      db-servers-hosts = [ "127.0.0.1:3310" "127.0.0.1:3311" ];
      db-servers-credential.file = "/run/secrets/admin";
      replication-credential.file = "/run/secrets/repl";
    }}; {extra} }}; }}"""


def test_example_gives_a_hardened_unit_running_repman_watch():
    out = eval_nixos(EXAMPLES / "nixos-watcher.nix")
    assert out["failedAssertions"] == []
    unit = out["unit"]
    service = unit["serviceConfig"]
    for option, value in HARDENING.items():
        assert service[option] == value, option
    assert service["ExecStart"].endswith("-repman-0.1.0/bin/repman --config /etc/repman/watcher.json watch")
    assert unit["wantedBy"] == ["multi-user.target"] and "network-online.target" in unit["after"]
    assert sorted(service["LoadCredential"]) == sorted([
        "shop.db-servers-credential:/run/secrets/repman-admin",
        "shop.replication-credential:/run/secrets/repman-replication",
        "api-user.ops:/run/secrets/repman-api-ops",
    ])
    assert out["firewallPorts"] == [10005]


def test_generated_config_references_secrets_and_parses(tmp_path: Path):
    out = eval_nixos(EXAMPLES / "nixos-watcher.nix")
    config = out["watcherConfig"]
    shop = config["clusters"]["shop"]
    assert shop["db-servers-credential"] == {"file": f"{CREDS}/shop.db-servers-credential"}
    assert shop["monitoring-datadir"] == "/var/lib/repman"
    assert config["api"]["api-users"]["ops"] == {"role": "operator", "password": {"file": f"{CREDS}/api-user.ops"}}
    # What systemd's LoadCredential does at start: copy each secret under the credentials dir.
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "shop.db-servers-credential").write_text("repman:admin-pw\n")
    (creds / "shop.replication-credential").write_text("repl:repl-pw\n")
    (creds / "api-user.ops").write_text("ops-password\n")
    text = json.dumps(config)
    assert "admin-pw" not in text and "/run/secrets/" not in text
    parsed = parse_config(json.loads(text.replace(CREDS, str(creds))), "watcher.json")
    shop_cfg = parsed.cluster("shop")
    assert shop_cfg["failover-mode"] == "automatic"
    assert [s.url for s in shop_cfg.servers] == ["db1.internal:3306", "db2.internal:3306", "db3.internal:3306"]
    assert shop_cfg.admin.user == "repman" and shop_cfg.replication.password == "repl-pw"
    assert shop_cfg["haproxy"] is True and shop_cfg["semisync"] is True
    api = api_config(parsed)
    assert api.enabled and api.bind == "0.0.0.0" and "ops" in api.users
    # And the real command the unit runs accepts the file.
    path = tmp_path / "watcher.json"
    path.write_text(text.replace(CREDS, str(creds)))
    proc = subprocess.run([sys.executable, "-m", "repman.cli", "--config", str(path), "config", "check"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "configuration is valid" in proc.stdout


def test_nixos_cluster_keys_cover_the_watcher_and_routing_tables():
    from repman.watcher.config import all_cluster_keys
    out = eval_nixos(EXAMPLES / "nixos-watcher.nix")
    emitted = set(out["watcherConfig"]["clusters"]["shop"])
    keys = all_cluster_keys()
    assert emitted <= set(keys)
    unset = {n for n in set(keys) - emitted}
    assert all(keys[n].secret or keys[n].kind == "credential" or keys[n].default is None for n in unset), unset


def test_environment_references_need_an_environment_file():
    decl = """{ services.repman = { enable = true; clusters.c1 = {
      db-servers-hosts = [ "127.0.0.1:3310" ];
      db-servers-credential.env = "ADMIN"; replication-credential.env = "REPL"; }; }; }"""
    out = eval_nixos(decl)
    assert "services.repman.environmentFile: { env = ...; } secret references need an environment file" \
        in out["failedAssertions"]
    out = eval_nixos(decl.replace("enable = true;", 'enable = true; environmentFile = "/run/secrets/repman.env";'))
    assert out["failedAssertions"] == []
    assert out["unit"]["serviceConfig"]["EnvironmentFile"] == "/run/secrets/repman.env"
    assert out["watcherConfig"]["clusters"]["c1"]["db-servers-credential"] == {"env": "ADMIN"}
    assert out["unit"]["serviceConfig"]["LoadCredential"] == []


def test_missing_hosts_and_credentials_are_assertions():
    out = eval_nixos('{ services.repman = { enable = true; clusters."bad name" = { }; }; }')
    failed = out["failedAssertions"]
    assert "services.repman.clusters.bad name.db-servers-hosts: is required" in failed
    assert any(m.startswith("services.repman.clusters.bad name.db-servers-credential: is required") for m in failed)
    assert any("a cluster name is letters, digits" in m for m in failed)
    assert eval_nixos("{ services.repman.enable = true; }")["failedAssertions"] == [
        "services.repman.clusters: declare at least one cluster to watch"]


def test_typed_options_reject_typos_and_inline_secrets():
    err = nix_error([str(HARNESS), "--arg", "configuration", cluster("clusters.c1.failover-modee = \"automatic\";")])
    assert "The option `services.repman.clusters.c1.failover-modee' does not exist" in err
    err = nix_error([str(HARNESS), "--arg", "configuration", cluster("clusters.c1.failover-mode = \"sometimes\";")])
    assert 'services.repman.clusters.c1.failover-mode: expected one of "manual", "automatic"' in err
    err = nix_error([str(HARNESS), "--arg", "configuration",
                     cluster("clusters.c1.proxysql-password = \"admin-secret\";")])
    assert "expected a secret reference" in err and "admin-secret" not in err
    err = nix_error([str(HARNESS), "--arg", "configuration",
                     cluster("clusters.c1.proxysql-password.pulumiSecret = true;")])
    assert "expected a secret reference" in err  # no Pulumi on a NixOS host


def test_password_hash_users_warn_and_disabled_service_has_no_unit():
    out = eval_nixos(cluster('api.enable = true; api.users.v = { passwordHash = "pbkdf2-sha256$1$AA$AA"; };'))
    assert out["failedAssertions"] == []
    assert any("password hashes end up in the world-readable Nix store" in w for w in out["warnings"])
    assert out["watcherConfig"]["api"]["api-users"]["v"] == {"role": "viewer", "password-hash": "pbkdf2-sha256$1$AA$AA"}
    off = eval_nixos('{ services.repman.clusters.c1.db-servers-hosts = [ "h:1" ]; }')
    assert off["unit"] is None and off["watcherConfig"] is None


def test_a_module_file_can_set_scripts_and_groups(tmp_path: Path):
    decl = tmp_path / "host.nix"
    decl.write_text(cluster(f'supplementaryGroups = [ "haproxy" ]; extraArgs = [ "--no-api" ]; '
                            f'clusters.c1.failover-pre-script = {nix_string("/etc/repman/pre.sh")};'))
    out = eval_nixos(decl)
    assert out["unit"]["serviceConfig"]["SupplementaryGroups"] == ["haproxy"]
    assert out["unit"]["serviceConfig"]["ExecStart"].endswith("--config /etc/repman/watcher.json watch --no-api")
    assert out["watcherConfig"]["clusters"]["c1"]["failover-pre-script"] == "/etc/repman/pre.sh"


def test_vip_capabilities_are_granted_only_when_asked():
    plain = eval_nixos(cluster())["unit"]["serviceConfig"]
    assert plain["CapabilityBoundingSet"] == plain["AmbientCapabilities"] == ""
    assert plain["RestrictAddressFamilies"] == ["AF_INET", "AF_INET6", "AF_UNIX"]
    vip = eval_nixos(cluster('capabilities = [ "CAP_NET_ADMIN" "CAP_NET_RAW" ];'))["unit"]["serviceConfig"]
    assert vip["CapabilityBoundingSet"] == vip["AmbientCapabilities"] == "CAP_NET_ADMIN CAP_NET_RAW"
    assert vip["RestrictAddressFamilies"][-2:] == ["AF_NETLINK", "AF_PACKET"]
    assert vip["NoNewPrivileges"] is True and vip["DynamicUser"] is True
    err = nix_error([str(HARNESS), "--arg", "configuration", cluster('capabilities = [ "CAP_SYS_ADMIN" ];')])
    assert "services.repman.capabilities" in err


def test_the_vm_test_watcher_machine_evaluates_and_its_config_parses(tmp_path: Path):
    """The watcher node of nix/nixos/test.nix (runNixOSTest, never run here): valid, and the file
    its unit reads is accepted by the real parser."""
    out = eval_nixos(NIX_DIR / "nixos" / "test-watcher.nix")
    assert out["failedAssertions"] == []
    config = out["watcherConfig"]
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "vmtest.db-servers-credential").write_text("repman:test-admin-pw\n")
    (creds / "vmtest.replication-credential").write_text("repl:test-repl-pw\n")
    parsed = parse_config(json.loads(json.dumps(config).replace(CREDS, str(creds))), "watcher.json")
    api_config(parsed)  # the api: section too, as `repman watch` loads the file
    vmtest = parsed.cluster("vmtest")
    assert [s.url for s in vmtest.servers] == ["db1:3306", "db2:3306"] and vmtest["failover-mode"] == "automatic"
    assert out["unit"]["path"] == ["/nix/store/00000000000000000000000000000000-mariadb-server-10.11"]
