"""Commands, event handlers and the delivery worker."""
