# One repman cluster: an option per stack key under `repman.<key>` (repman's names:
# provisioning, and the watcher/routing/API keys such as failover-mode the stack passes on),
# typed from nix/generated/schema.json, plus the cross-key checks of repman.spec as
# assertions, so a bad declaration fails at evaluation time, before any `pulumi preview`.
{ lib, config, ... }:
let
  b = builtins;
  schema = lib.importJSON ../generated/schema.json;
  keyTypes = import ../lib/repman-types.nix { inherit lib; };
  cfg = config.repman;

  plan = schema.plans.${cfg.prov-service-plan} or null;
  nodeCount =
    if cfg.prov-db-nodes != null then cfg.prov-db-nodes
    else if plan != null then plan.db-nodes
    else 0;
  preferred = cfg.db-servers-prefered-master;
  # repman's comma-separated list: each entry a node index or host[:port]; the first is the primary
  preferredEntries = b.filter (s: s != "") (map (s: let m = b.match " *([^ ]*) *" s; in if m == null then s else b.head m)
    (b.filter b.isString (b.split "," preferred)));
  indexOf = s: if b.match "[0-9]+" s != null then b.fromJSON (b.head (b.match "0*([0-9]+)" s)) else null;
  badIndex = b.filter (s: indexOf s != null && (indexOf s < 1 || indexOf s > nodeCount)) preferredEntries;
  badEntry = b.filter (s: indexOf s == null && !(keyTypes.isHostOrHostPort s)) preferredEntries;
  preferredIndex = if badIndex == [ ] then null else indexOf (b.head badIndex);
  has = tag: b.elem tag cfg.prov-db-tags;
  hasProxy = tag: b.elem tag cfg.prov-proxy-tags;
  show = b.toJSON;

  required = b.filter (e: e.required) schema.stack;
  sameRef = a: c: a != null && c != null && !(keyTypes.isPulumiSecret a) && a == c;
in
{
  imports = [ ./base.nix ];

  options.repman = keyTypes.keyOptions { pulumi = true; } schema.stack;

  config.assertions =
    map
      (e: {
        assertion = cfg.${e.name} != null;
        message = "repman.${e.name}: is required: { pulumiSecret = true; } (then `pulumi config set --secret ${schema.namespace}:${e.name} user:password`), { file = \"/run/secrets/NAME\"; } or { env = \"VARIABLE\"; }";
      })
      required
    ++ [
      {
        assertion = b.match "[a-z][a-z0-9-]{0,39}" cfg.cluster-name != null;
        message = "repman.cluster-name: ${show cfg.cluster-name} must be lowercase letters, digits and '-' (up to 40, starting with a letter)";
      }
      {
        assertion = cfg.prov-db-nodes == null || cfg.prov-db-nodes >= 1;
        message = "repman.prov-db-nodes: node count must be at least 1, got ${toString cfg.prov-db-nodes}";
      }
      {
        assertion = cfg.db-servers-base-port + nodeCount - 1 <= 65535;
        message = "repman.db-servers-base-port: ${toString nodeCount} nodes from port ${toString cfg.db-servers-base-port} go past 65535";
      }
      {
        assertion = preferredIndex == null || (preferredIndex >= 1 && preferredIndex <= nodeCount);
        message = "repman.db-servers-prefered-master: node index ${toString preferredIndex} is not between 1 and ${toString nodeCount}";
      }
      {
        assertion = badEntry == [ ];
        message = "repman.db-servers-prefered-master: ${show (if badEntry == [ ] then preferred else b.head badEntry)} is neither a node index nor host:port";
      }
      {
        assertion = !(sameRef cfg.db-servers-credential cfg.replication-credential);
        message = "repman.replication-credential: must not be the same secret as db-servers-credential (replication needs its own user)";
      }
      {
        assertion = cfg.prov-orchestrator != "onpremise" || b.length cfg.onpremise-hosts == nodeCount;
        message = "repman.onpremise-hosts: ${toString (b.length cfg.onpremise-hosts)} hosts listed but the cluster has ${toString nodeCount} nodes";
      }
    ]
    ++ map
      (pair: {
        assertion = !(has (b.elemAt pair 0) && has (b.elemAt pair 1));
        message = "repman.prov-db-tags: tags '${b.elemAt pair 0}' and '${b.elemAt pair 1}' contradict each other";
      })
      schema.conflictingTags
    ++ map
      (pair: {
        assertion = !(hasProxy (b.elemAt pair 0) && hasProxy (b.elemAt pair 1));
        message = "repman.prov-proxy-tags: tags '${b.elemAt pair 0}' and '${b.elemAt pair 1}' contradict each other";
      })
      schema.conflictingProxyTags;
}
