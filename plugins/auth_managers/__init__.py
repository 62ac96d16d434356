"""Auth managers for Prep Support deployments (configured by ``[core] auth_manager``, never imported by DAGs)."""
