"""Accounts: the owner of today's password and the labellers the owner adds, their passwords kept only as Argon2
hashes, and sign-in against both."""
import sqlite3

import pytest

from backend.accounts import LOCAL_OWNER, Account, AccountError, AccountStore, SignIn
from backend.db import connect


def test_a_labeller_signs_in_with_the_password_made_for_them_and_not_after_removal():
    store = AccountStore(connect())
    password = store.add_labeller("bea", owner_name="anna")
    assert len(password) >= 16
    sign_in = SignIn(("anna", "owner-pw"), lambda: store)
    assert sign_in.check("bea", password)
    assert not sign_in.check("bea", password + "x") and not sign_in.check("nobody", password)
    assert sign_in.account("bea") == Account("bea", "labeller") and not sign_in.account("bea").is_owner
    assert sign_in.check("anna", "owner-pw") and not sign_in.check("anna", "wrong")
    assert sign_in.account("anna").is_owner and sign_in.account("anna").labeller == "owner"

    second = store.new_password("bea")
    assert not sign_in.check("bea", password) and sign_in.check("bea", second)
    store.remove("bea")
    assert sign_in.account("bea") is None and not sign_in.check("bea", second)
    assert store.labellers() == []


def test_without_a_password_the_one_local_user_is_the_owner():
    sign_in = SignIn(None, lambda: AccountStore(connect()))
    assert sign_in.account(None) == LOCAL_OWNER and LOCAL_OWNER.is_owner
    assert not sign_in.passwords_on and not sign_in.check("owner", "")


def test_names_are_checked_in_words():
    store = AccountStore(connect())
    store.add_labeller("bea")
    with pytest.raises(AccountError, match="already a labeller called 'bea'"):
        store.add_labeller("bea")
    with pytest.raises(AccountError, match="owner's name"):
        store.add_labeller("Anna", owner_name="anna")
    with pytest.raises(AccountError, match="owner's name"):
        store.add_labeller("owner")
    with pytest.raises(AccountError, match="cannot be a labeller's name"):
        store.add_labeller("bea smith; drop table")
    with pytest.raises(AccountError, match="no labeller called 'sam'"):
        store.remove("sam")
    assert [row["name"] for row in store.labellers()] == ["bea"]


def test_the_hash_is_the_only_trace_of_a_password(home):
    store = AccountStore(connect())
    password = store.add_labeller("bea")
    store.verify("bea", password)
    stored = sqlite3.connect(home / "tuneloop.db").execute("select password_hash from accounts").fetchone()[0]
    assert stored.startswith("$argon2id$") and password not in stored
    found = [path for path in home.rglob("*") if path.is_file() and password.encode() in path.read_bytes()]
    assert found == []
