"""pcctl's commands, one module per area; each module's register() adds its groups to the root."""
