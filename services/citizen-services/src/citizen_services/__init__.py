"""citizen_services."""
