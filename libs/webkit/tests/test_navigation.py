"""The service navigation by role: a :class:`webkit.app.Link` with roles is shown only to a
signed-in user with one of them (the staff console's areas; its browser tests check the
pages)."""

from webkit.app import Link, User


def _user(*roles: str) -> User:
    return User(subject="someone", token="t", roles=frozenset(roles))


def test_a_link_without_roles_is_shown_to_everyone() -> None:
    link = Link("Accessibility statement", "/accessibility")
    assert link.shown_to(None) and link.shown_to(_user()) and link.shown_to(_user("staff"))


def test_a_link_with_roles_is_shown_only_to_a_user_with_one_of_them() -> None:
    link = Link("API keys", "/admin/api-keys", ("admin",))
    assert link.shown_to(_user("admin", "staff"))
    assert not link.shown_to(_user("staff"))
    assert not link.shown_to(_user("partner"))
    assert not link.shown_to(None)
