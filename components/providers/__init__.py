"""Dynamic providers: thin create/diff/update/delete wrappers over the runtime package."""
