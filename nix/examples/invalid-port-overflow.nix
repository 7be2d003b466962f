# Must NOT evaluate: five nodes from port 65533 would need ports up to 65537.
# Expected failure: "repman.db-servers-base-port: 5 nodes from port 65533 go past 65535"
{
  repman = {
    cluster-name = "overflow";
    prov-service-plan = "x5.tiny";
    db-servers-base-port = 65533;
    db-servers-credential = { pulumiSecret = true; };
    replication-credential = { pulumiSecret = true; };
  };
}
