"""Capability commands of the `workbench` CLI, one module per capability."""
