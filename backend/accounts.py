"""Accounts: the owner and the labellers the owner adds.

- The owner is the user of today's single password (TUNELOOP_AUTH); without a password (127.0.0.1) the one local
  user is the owner. The owner's password is never stored: it comes from the environment or a file each start.
- A labeller is added by the owner with a name; the app makes a password, shows it once and stores only its Argon2
  hash (argon2-cffi). The owner can give a new one (the old stops working) or remove the labeller.
- Labels carry their labeller's name; the owner's carry OWNER. A labeller may chat and label, nothing else: the web
  app asks `Account.may` before it serves a request (ui/exposure.py RoleGuard).

    accounts = AccountStore(db)
    password = accounts.add_labeller("bea")       # shown to the owner once
    sign_in = SignIn(("anna", "owner's password"), lambda: AccountStore(connect()))
    sign_in.check("bea", password)                 # True
    sign_in.account("bea")                         # Account("bea", "labeller"); None once removed
"""
from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.errors import TuneloopError

OWNER = "owner"  # the owner's role, and the labeller name the owner's labels carry
LABELLER = "labeller"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
PASSWORD_BYTES = 12  # 16 characters of token_urlsafe: 96 random bits
_HASHER = PasswordHasher()  # argon2id with the library's defaults (RFC 9106's low-memory profile)


class AccountError(TuneloopError):
    """An account that cannot be added, changed or removed as asked."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str

    @property
    def is_owner(self) -> bool:
        return self.role == OWNER

    @property
    def labeller(self) -> str:
        """The name the account's labels carry."""
        return OWNER if self.is_owner else self.name


LOCAL_OWNER = Account(OWNER, OWNER)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class AccountStore:
    """The labellers' accounts in the workspace database (table `accounts`): name, role, Argon2 hash."""

    def __init__(self, db):
        self.db = db

    def add_labeller(self, name: str, owner_name: str | None = None) -> str:
        """Adds a labeller and returns the password made for them: the only time it is seen."""
        name = check_name(name, owner_name)
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        hashed = _HASHER.hash(password)  # before the write lock: hashing takes a third of a second
        with self.db.atomic():
            if self.get(name):
                raise AccountError(f"There is already a labeller called '{name}'. Pick another name, or give "
                                   "them a new password.")
            self.db["accounts"].insert({"name": name, "role": LABELLER, "password_hash": hashed, "created": _now()})
        return password

    def new_password(self, name: str) -> str:
        """A new password for a labeller (the old one stops working); returned once, stored as its hash."""
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        hashed = _HASHER.hash(password)
        with self.db.atomic():
            self._existing(name)
            self.db["accounts"].update(name, {"password_hash": hashed})
        return password

    def remove(self, name: str):
        """Removes a labeller. Their labels stay, with their name."""
        with self.db.atomic():
            self._existing(name)
            self.db["accounts"].delete(name)

    def get(self, name: str | None) -> Account | None:
        if not name:
            return None
        rows = self.db.rows("select name, role from accounts where name = ?", [name])
        return Account(rows[0]["name"], rows[0]["role"]) if rows else None

    def labellers(self) -> list[dict]:
        """name and created of each labeller, oldest first (no hashes)."""
        return self.db.rows("select name, created from accounts where role = ? order by created, name", [LABELLER])

    def verify(self, name: str, password: str) -> Account | None:
        """The account when `password` is its password. An unknown name costs as much time as a wrong password,
        so that the answer's timing does not tell which names exist."""
        rows = self.db.rows("select name, role, password_hash from accounts where name = ?", [name])
        stored = rows[0]["password_hash"] if rows else _dummy_hash()
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return Account(rows[0]["name"], rows[0]["role"]) if rows else None

    def _existing(self, name: str) -> Account:
        account = self.get(name)
        if account is None:
            raise AccountError(f"There is no labeller called '{name}'.")
        return account


def check_name(name: str, owner_name: str | None = None) -> str:
    name = (name or "").strip()
    if not NAME.match(name):
        raise AccountError(f"'{name}' cannot be a labeller's name: use 1 to 40 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit (e.g. bea or sam.k).")
    if name.lower() in {OWNER, (owner_name or "").lower()}:
        raise AccountError(f"'{name}' is the owner's name. Pick another name for the labeller.")
    return name


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash(secrets.token_urlsafe(PASSWORD_BYTES)))
    return _DUMMY[0]


class SignIn:
    """Who may sign in, and as whom: the owner's `user:password` (None: no password, everyone is the local owner)
    and the labellers in the database. `store()` opens an AccountStore (one per thread: the web server's)."""

    def __init__(self, owner: tuple[str, str] | None, store: Callable[[], AccountStore]):
        self.owner = owner
        self.store = store
        # The owner's password is checked by Argon2 too, so that a sign-in's timing does not tell the owner's name
        # (a plain comparison answered in microseconds, every other name in a third of a second).
        self._owner_hash = _HASHER.hash(owner[1]) if owner else None

    @property
    def passwords_on(self) -> bool:
        return self.owner is not None

    @property
    def owner_name(self) -> str | None:
        return self.owner[0] if self.owner else None

    def check(self, name: str, password: str) -> bool:
        """Gradio's `auth` callable: the owner's password, or a labeller's."""
        if self.owner is None:
            return False
        if hmac.compare_digest(name.encode(), self.owner[0].encode()):
            try:
                return _HASHER.verify(self._owner_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return self.store().verify(name, password) is not None

    def account(self, name: str | None) -> Account | None:
        """The account a signed-in name stands for now; None for a name with no account (a removed labeller)."""
        if self.owner is None:
            return LOCAL_OWNER
        if name == self.owner[0]:
            return Account(name, OWNER)
        return self.store().get(name)
