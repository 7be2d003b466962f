"""The checks `pulumi stack import` makes on an exported deployment, for the engine tests."""

from __future__ import annotations


def check_deployment(doc: dict) -> dict[str, dict]:
    """The snapshot rules ``pulumi stack import`` verifies: version 3, unique URNs, parents,
    dependencies and providers defined before use, custom resources with an id and a provider."""
    assert doc["version"] == 3 and doc["deployment"]["manifest"]["time"]
    seen: dict[str, dict] = {}
    providers: set[str] = set()
    for res in doc["deployment"]["resources"]:
        assert res["urn"] not in seen, res["urn"]
        assert res["urn"].split("::")[-1] and res["urn"].startswith("urn:pulumi:")
        if res.get("parent"):
            assert res["parent"] in seen, f"{res['urn']}: parent after child"
        for dep in res.get("dependencies", []):
            assert dep in seen, f"{res['urn']}: dependency {dep} after it"
        if res["type"].startswith("pulumi:providers:"):
            providers.add(f"{res['urn']}::{res['id']}")
        elif res["custom"]:
            assert res["id"] and res["provider"] in providers, res["urn"]
        seen[res["urn"]] = res
    return seen
