"""Commands, event handlers and the workers. They take the repositories they use
(``notifications.persistence``) and, to publish, the unit of work; they never commit."""
