"""mkinfra."""
