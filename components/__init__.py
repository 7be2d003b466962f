"""Pulumi layer: components, backends and dynamic providers (imports pulumi; repman/ never does)."""
