"""Which names may carry a credential: what a recording drops from a REST answer's headers
and what `config show` hides among QuestDB's settings. One list, so that both err the same
way: a name is suspect if any part of it appears in it, whatever its case."""

from __future__ import annotations

from typing import Final

# authorization, proxy-authorization, cookie, set-cookie, x-api-key, x-auth-token, pg.password,
# http.password, and the names providers invent for their keys.
SECRET_NAME_PARTS: Final = ("key", "secret", "token", "auth", "cookie", "session", "password")


def names_a_secret(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)
