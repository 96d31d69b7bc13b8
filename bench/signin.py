"""Sign-in time for a real account against an unknown email, with the production hash.

    .venv/bin/python bench/signin.py [--repeats 15]

POSTs the sign-in form (wrong password, so nothing locks within the run: the limit is
raised) for a real account and for an address no account has, and prints the median of
each. The baseline, measured in the same run, is what an unknown email cost before: one
check of a 1000-round PBKDF2 hash instead of the scrypt hash real passwords use (the
difference that told which addresses have accounts: 5 ms against 110 ms).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    from alembic import command
    from werkzeug.security import check_password_hash, generate_password_hash

    from nguon import services
    from nguon.db import commit_boundary
    from nguon.migrate import alembic_config
    from tests.conftest import make_test_app

    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'bench.db'}"
    command.upgrade(alembic_config(url), "head")
    app = make_test_app(
        url, folder, PASSWORD_HASH_METHOD="scrypt", LOGIN_MAX_ATTEMPTS=100, TESTING=False
    )
    with app.app_context(), commit_boundary():
        services.create_user("real@bench.nguon.vn", "officer", password="a long password")

    def post(email: str) -> float:
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        started = time.perf_counter()
        response = client.post(
            "/login", data={"email": email, "password": "wrong password", "csrf_token": token}
        )
        elapsed = time.perf_counter() - started
        assert response.status_code == 401, response.status_code
        return elapsed

    old_dummy = generate_password_hash("not-a-real-password", method="pbkdf2:sha256:1000")

    def old_unknown() -> float:
        started = time.perf_counter()
        check_password_hash(old_dummy, "wrong password")
        return time.perf_counter() - started

    post("real@bench.nguon.vn")  # warm up: templates, the dummy hash
    cases = [
        ("baseline: old unknown-email hash check", old_unknown),
        ("real account, wrong password", lambda: post("real@bench.nguon.vn")),
        ("unknown email", lambda: post("nobody@bench.nguon.vn")),
    ]
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(args.repeats):  # interleaved: a busy machine's drift hits all alike
        for index, (_name, run) in enumerate(cases):
            times[index].append(run())
    rows = [(name, statistics.median(t) * 1000) for (name, _), t in zip(cases, times, strict=True)]
    real = rows[1][1]
    print(f"{'what':<40}{'median ms':>10}{'÷ real':>8}")
    for name, ms in rows:
        print(f"{name:<40}{ms:>10.1f}{ms / real:>8.2f}")


if __name__ == "__main__":
    main()
