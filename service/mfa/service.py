"""MfaService: the MFA domain as the Runtime carries it (``runtime.mfa``)."""

from __future__ import annotations

from dataclasses import dataclass

from service.mfa.challenge import LoginSecondFactor
from service.mfa.factors import Factors


@dataclass(frozen=True, slots=True)
class MfaService:
    factors: Factors
    login: LoginSecondFactor
