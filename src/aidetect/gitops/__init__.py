"""GitOps: models move between environments only through git (overlays, branches, pull requests)."""
