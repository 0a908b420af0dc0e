"""The secrets a deployment must set, refused when missing or an example's: `python -m clever_attendance.deploy_secrets
check` (docker-compose's airflow-init job runs it first). `make cluster` and the Celery test generate fresh values and
pass them through the same check. No message ever holds a secret's value.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping

JWT_SECRET = "AIRFLOW__API_AUTH__JWT_SECRET"
FERNET_KEY = "AIRFLOW__CORE__FERNET_KEY"
ADMIN_PASSWORD = "_AIRFLOW_WWW_USER_PASSWORD"
HOW = {  # the command that generates each
    JWT_SECRET: 'python -c "import secrets; print(secrets.token_urlsafe(48))"',
    FERNET_KEY: 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
    ADMIN_PASSWORD: 'python -c "import secrets; print(secrets.token_urlsafe(18))"',
}
MIN_JWT_SECRET = 32
MIN_PASSWORD = 12
WEAK_PASSWORDS = {"admin", "airflow", "password", "changeme", "secret", "123456", "12345678"}


def _fernet_key(text: str) -> bool:
    from cryptography.fernet import Fernet

    try:
        Fernet(text.encode())
    except ValueError:  # binascii.Error too: not base64
        return False
    return True


def _weakness(name: str, value: str) -> str | None:
    if not value.strip():
        return "is not set"
    if value.lower().startswith("change-me"):
        return "is the example's placeholder"
    # Airflow takes several comma-separated Fernet keys while rotating them: each must be one
    if name == FERNET_KEY and not all(_fernet_key(key) for key in value.split(",")):
        return "is not a Fernet key (32 bytes, url-safe base64)"
    if name == JWT_SECRET and len(value) < MIN_JWT_SECRET:
        return f"is shorter than {MIN_JWT_SECRET} characters"
    if name == ADMIN_PASSWORD and value.lower() in WEAK_PASSWORDS:
        return "is well known"
    if name == ADMIN_PASSWORD and len(value) < MIN_PASSWORD:
        return f"is shorter than {MIN_PASSWORD} characters"
    return None


def refusals(env: Mapping[str, str]) -> list[str]:
    """One message per secret missing or an example's: the variable, why, and how to generate one."""
    return [f"{name} {why}: generate one with {HOW[name]} and set it in .env"
            for name in HOW if (why := _weakness(name, env.get(name, "")))]


def check(env: Mapping[str, str]) -> None:
    """Raise ValueError naming every secret of `env` that is missing or an example's."""
    problems = refusals(env)
    if problems:
        raise ValueError("refusing to run with these secrets:\n" + "\n".join(problems))


def generate() -> dict[str, str]:
    """Fresh random values of every secret, for a run of its own (`make cluster`, the Celery test)."""
    from cryptography.fernet import Fernet

    return {JWT_SECRET: secrets.token_urlsafe(48), FERNET_KEY: Fernet.generate_key().decode(),
            ADMIN_PASSWORD: secrets.token_urlsafe(18)}


def main(argv: list[str] | None = None) -> int:
    """`check`: exit 1, naming each refused secret on stderr, unless the environment's are all set and strong."""
    if (sys.argv[1:] if argv is None else argv) != ["check"]:
        print("usage: python -m clever_attendance.deploy_secrets check", file=sys.stderr)
        return 2
    problems = refusals(os.environ)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"secrets: {', '.join(HOW)} are set and none is an example's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
