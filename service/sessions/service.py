"""SessionService: the sessions domain as the Runtime carries it."""

from __future__ import annotations

from dataclasses import dataclass

from service.sessions.login import LoginService
from service.sessions.refresh import RefreshService
from service.sessions.users import UserService


@dataclass(frozen=True, slots=True)
class SessionService:
    users: UserService
    login: LoginService
    refresh: RefreshService
    cookie: bool
