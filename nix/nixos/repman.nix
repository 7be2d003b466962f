# NixOS module: `repman watch` as a hardened systemd service, its config generated from
# typed options (repman's key names, from nix/generated/schema.json). The generated file
# holds only references to secrets: `{ file = ...; }` secrets are handed to the unit by
# systemd's LoadCredential (the dynamic user never reads the originals), `{ env = ...; }`
# ones come from `environmentFile`, read by systemd as root. Nothing secret enters the store.
{ config, lib, pkgs, ... }:
let
  b = builtins;
  cfg = config.services.repman;
  schema = lib.importJSON ../generated/schema.json;
  keyTypes = import ../lib/repman-types.nix { inherit lib; };

  unit = "repman";
  stateDir = "/var/lib/${unit}";
  credentialsDir = "/run/credentials/${unit}.service";
  configPath = "repman/watcher.json";

  clusterEntries = schema.watcher ++ schema.routing;
  secretKeys = map (e: e.name) (b.filter keyTypes.isSecret clusterEntries);
  isFileRef = v: b.isAttrs v && v ? file;
  isEnvRef = v: b.isAttrs v && v ? env;

  withoutModule = c: b.removeAttrs c [ "_module" ];

  # One systemd credential per secret file: { id; path; }.
  clusterCredentials = name: c:
    lib.concatMap (k: lib.optional (isFileRef c.${k}) { id = "${name}.${k}"; path = c.${k}.file; }) secretKeys;
  userCredentials = lib.concatMap
    (n: lib.optional (isFileRef cfg.api.users.${n}.password) { id = "api-user.${n}"; path = cfg.api.users.${n}.password.file; })
    (b.attrNames cfg.api.users);
  credentials = lib.concatLists (lib.mapAttrsToList clusterCredentials cfg.clusters) ++ userCredentials;

  fromCredentials = id: { file = "${credentialsDir}/${id}"; };

  clusterSection = name: c:
    lib.filterAttrs (_: v: v != null)
      (b.mapAttrs (k: v: if b.elem k secretKeys && isFileRef v then fromCredentials "${name}.${k}" else v) (withoutModule c));

  userSection = n: u:
    lib.filterAttrs (_: v: v != null) {
      inherit (u) role;
      password-hash = u.passwordHash;
      password = if isFileRef u.password then fromCredentials "api-user.${n}" else u.password;
    };

  apiSection = lib.filterAttrs (_: v: v != null) (withoutModule cfg.api.settings)
    // lib.optionalAttrs (cfg.api.users != { }) { api-users = b.mapAttrs userSection cfg.api.users; };

  watcherConfig = { clusters = b.mapAttrs clusterSection cfg.clusters; }
    // lib.optionalAttrs cfg.api.enable { api = apiSection; };
  watcherConfigText = b.toJSON watcherConfig;

  allRefs = lib.concatLists (lib.mapAttrsToList (_: c: map (k: c.${k}) secretKeys) cfg.clusters)
    ++ map (n: cfg.api.users.${n}.password) (b.attrNames cfg.api.users);

  clusterModule = {
    options = keyTypes.keyOptions { pulumi = false; } clusterEntries;
    # The watcher's counters and crash records live in the unit's state directory.
    config.monitoring-datadir = lib.mkDefault stateDir;
  };

  userModule = {
    options = {
      role = lib.mkOption { type = lib.types.enum [ "viewer" "operator" ]; default = "viewer"; description = "What the user may do: read status (viewer) or also run operations (operator)."; };
      passwordHash = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; description = "A `repman hash-password` hash (it lands in the world-readable store; prefer `password`)."; };
      password = lib.mkOption { type = lib.types.nullOr (keyTypes.secretRef { pulumi = false; }); default = null; description = "Reference to the password: { file = \"/run/secrets/...\"; } or { env = \"VAR\"; }."; };
    };
  };
in
{
  options.services.repman = {
    enable = lib.mkEnableOption "the repman watcher (failover and switchover of MariaDB replication clusters)";

    package = lib.mkOption {
      type = lib.types.package;
      description = "The repman package providing `bin/repman` (the flake's module sets its own).";
    };

    path = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = [ pkgs.mariadb_1011 ];
      description = "Packages on the service's PATH (mariadb-binlog for flashback rejoin, mariadb-dump).";
    };

    clusters = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule clusterModule);
      default = { };
      description = "Clusters to watch: `clusters.<name>.<repman key>`, e.g. db-servers-hosts, failover-mode, haproxy-servers.";
    };

    api = {
      enable = lib.mkEnableOption "the watcher's HTTP API and dashboard";
      openFirewall = lib.mkOption { type = lib.types.bool; default = false; description = "Open api-port in the firewall."; };
      settings = lib.mkOption {
        type = lib.types.submodule { options = keyTypes.keyOptions { pulumi = false; } schema.api; };
        default = { };
        description = "The api-* keys of the top-level `api:` section.";
      };
      users = lib.mkOption {
        type = lib.types.attrsOf (lib.types.submodule userModule);
        default = { };
        description = "API users (api-users), each with a role and a password reference or hash.";
      };
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "File of VARIABLE=value lines, read by systemd as root, for { env = \"VARIABLE\"; } secret references.";
    };

    supplementaryGroups = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "haproxy" ];
      description = "Groups of the dynamic user, e.g. to reach a proxy's admin socket.";
    };

    capabilities = lib.mkOption {
      type = lib.types.listOf (lib.types.enum [ "CAP_NET_ADMIN" "CAP_NET_RAW" ]);
      default = [ ];
      example = [ "CAP_NET_ADMIN" "CAP_NET_RAW" ];
      description = ''
        Capabilities the watcher keeps for a failover script that moves a virtual IP
        (failover-post-script): CAP_NET_ADMIN for `ip addr add/del`, CAP_NET_RAW for a
        gratuitous `arping`. Each also opens the socket family it needs (netlink, packet);
        put iproute2 / iputils in `path`. Empty (the default): no capability at all.
      '';
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "--no-api" ];
      description = "Extra arguments of `repman watch`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions =
      [
        { assertion = cfg.clusters != { }; message = "services.repman.clusters: declare at least one cluster to watch"; }
        {
          assertion = cfg.environmentFile != null || !(b.any isEnvRef allRefs);
          message = "services.repman.environmentFile: { env = ...; } secret references need an environment file";
        }
        {
          assertion = cfg.environmentFile == null || !(lib.hasPrefix "/nix/store/" cfg.environmentFile);
          message = "services.repman.environmentFile: must not be in the Nix store (it holds secrets)";
        }
      ]
      ++ lib.concatLists (lib.mapAttrsToList
        (name: c: [
          {
            assertion = b.match "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}" name != null;
            message = "services.repman.clusters.${name}: a cluster name is letters, digits, '.', '_' or '-'";
          }
          { assertion = c.db-servers-hosts != [ ]; message = "services.repman.clusters.${name}.db-servers-hosts: is required"; }
          { assertion = c.db-servers-credential != null; message = "services.repman.clusters.${name}.db-servers-credential: is required ({ file = \"/run/secrets/...\"; })"; }
          { assertion = c.replication-credential != null; message = "services.repman.clusters.${name}.replication-credential: is required ({ file = \"/run/secrets/...\"; })"; }
        ])
        cfg.clusters)
      ++ lib.mapAttrsToList
        (n: u: {
          assertion = (u.passwordHash == null) != (u.password == null);
          message = "services.repman.api.users.${n}: set exactly one of password (a reference) or passwordHash";
        })
        cfg.api.users;

    warnings = lib.optional (b.any (u: u.passwordHash != null) (b.attrValues cfg.api.users))
      "services.repman.api.users: password hashes end up in the world-readable Nix store; prefer password = { file = ...; }";

    environment.etc.${configPath}.text = watcherConfigText;

    networking.firewall.allowedTCPPorts = lib.optional (cfg.api.enable && cfg.api.openFirewall) cfg.api.settings.api-port;

    systemd.services.${unit} = {
      description = "repman watcher: failover and switchover of MariaDB replication clusters";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      inherit (cfg) path;
      restartTriggers = [ (b.hashString "sha256" watcherConfigText) ];
      environment = { HOME = stateDir; PYTHONDONTWRITEBYTECODE = "1"; };
      serviceConfig = {
        ExecStart = lib.escapeShellArgs ([ "${cfg.package}/bin/repman" "--config" "/etc/${configPath}" "watch" ] ++ cfg.extraArgs);
        Restart = "on-failure";
        RestartSec = 5;
        DynamicUser = true;
        StateDirectory = unit;
        StateDirectoryMode = "0700";
        RuntimeDirectory = unit;
        RuntimeDirectoryMode = "0700";
        WorkingDirectory = stateDir;
        LoadCredential = map (c: "${c.id}:${c.path}") credentials;
        SupplementaryGroups = cfg.supplementaryGroups;
        UMask = "0077";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        DevicePolicy = "closed";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ]
          ++ lib.optional (b.elem "CAP_NET_ADMIN" cfg.capabilities) "AF_NETLINK"
          ++ lib.optional (b.elem "CAP_NET_RAW" cfg.capabilities) "AF_PACKET";
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
        CapabilityBoundingSet = lib.concatStringsSep " " cfg.capabilities;
        AmbientCapabilities = lib.concatStringsSep " " cfg.capabilities;
      } // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
    };
  };
}
