"""Commands, queries and their rules; nothing HTTP-shaped, no SQL. A command takes the
unit of work (``uow.publish``, ``uow.flush``; it never commits) and the repositories built
from it; a query takes repositories built from a read session."""
